"""Helpers shared by tests: feeding events through the real intake, and a report oracle."""
