"""Grafana dashboards and the live view, built as code (see the dashboards issue).

Reads ClickHouse only through ``sinks``; never the stream.
"""
