"""Helpers shared by tests: contract events, feeding them through the real intake, a plain
recomputation of the reports (the oracle), and comparing report JSON."""
