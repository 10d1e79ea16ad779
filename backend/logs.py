"""Logging without personal data. Query strings carry what people search for (an ID number,
a registry number, a phone), so the HTTP access log records the path only.

- `python app.py` (uvicorn): `uvicorn_log_config()` puts `PathOnly` on the `uvicorn.access`
  logger, which rewrites each record before any handler sees it.
- granian (production): its access log is off unless `--access-log` is given; its default
  format logs `%(path)s`, which has no query string. Never add `%(query_string)s` to
  `--access-log-fmt` (see the README).
"""

from __future__ import annotations

import copy
import logging
from typing import Any


def path_only(target: str) -> str:
    """`/students?q=G1101…` → `/students`."""
    return target.split("?", 1)[0]


class PathOnly(logging.Filter):
    """Drops the query string from uvicorn's access records, whose arguments are
    (client address, method, path with query, HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], path_only(args[2]), *args[3:])
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, with the access log's query strings dropped."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["path_only"] = {"()": PathOnly}
    config["loggers"]["uvicorn.access"]["filters"] = ["path_only"]
    # aiosqlite logs every statement with its parameters (searched numbers) at DEBUG
    config["loggers"]["aiosqlite"] = {"level": "INFO"}
    return config
