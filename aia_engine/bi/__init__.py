"""Business intelligence: the dashboard's figures, computed per client from the knowledge
graph's business entities (customers, products, PURCHASED, feedback) and the engine's own
records (tasks, stages, API request durations, health samples). docs/business-intelligence.md
states every formula."""
