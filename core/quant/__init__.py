"""Pure quantitative code: the engine, the risk metrics and the one period math (no database, no I/O)."""
