"""Built-in agents; importing this package registers them."""

from aia_engine.agents.builtin import (  # noqa: F401
    data_analysis,
    knowledge_graph,
    market_research,
    noop,
    reporting,
    sentiment,
    strategy,
)
