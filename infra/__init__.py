"""Wiring: the ``ostwatch`` command line, the embedded stack supervisor, deployment files."""
