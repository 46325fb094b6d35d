"""Shared plumbing every ostwatch part may import: settings, logging, local time.

It imports no other ostwatch package, so producers, streams, sinks and infra can all
depend on it without creating an import cycle.
"""
