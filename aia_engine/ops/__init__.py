"""Operating the engine: health state, system checks and alerts, logging, the backlog an operator
checks first. Nothing here runs a workflow; it watches the parts that do."""
