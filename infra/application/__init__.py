"""The application layer: one module per capability (reports, alerts, archive, audit,
registry, status), each operation a typed request and response. The CLI and the worker's
API both call it (``operations.Operations``), so validation and answers live once."""
