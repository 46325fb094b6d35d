"""Structured logging: JSON lines in the data directory, short human lines on the console.

Configured once at an entry point. A record about a Kafka message passes
``extra={"topic": ..., "partition": ..., "offset": ..., "event_id": ...}`` and those
fields land as JSON keys.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import orjson

_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with every ``extra`` field as a key."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


JsonFormatter.converter = __import__("time").gmtime  # timestamps in UTC, marked with Z


CLIENT_LOGGERS = ("kafka.", "aiokafka.")


def _no_client_retries(record: logging.LogRecord) -> bool:
    """Keep the Kafka clients' connection chatter (a line per retry while a broker is away)
    off the console; the log file keeps it, and ostwatch says what came of it in one line."""
    return record.levelno >= logging.CRITICAL or not record.name.startswith(CLIENT_LOGGERS)


def configure(level: str, log_file: Path | None = None, console: bool = True) -> None:
    """Send logs to a JSON-lines file (if given) and/or stderr; replaces earlier handlers."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(level)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(JsonFormatter())
        root.addHandler(file_handler)
    if console:
        stream_handler = logging.StreamHandler(sys.stderr)
        stream_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
        stream_handler.addFilter(_no_client_retries)
        root.addHandler(stream_handler)
    for noisy in ("kafka", "aiokafka", "faust", "mode", "clickhouse_connect", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
