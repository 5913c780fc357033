"""One logging setup for every jobstream process: a line per event on stderr, JSON with JOBSTREAM_LOG_FORMAT=json.

A line's facts go in `extra=` (`request_id`, `job_id`, `duration_ms`...): the JSON line carries each as its
own field, the text line carries the message alone (which says the same for a reader).

Standard library only, on purpose: gunicorn's master loads this file (gunicorn.conf.py) before gevent
patches its workers, so it must not import redis-py or anything of the core.
"""

from __future__ import annotations

import json
import logging
import logging.config
import time
from typing import Any

TEXT_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
# What every LogRecord has; anything else on a record came in through `extra=` and goes into the JSON line.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, pid, message, the `extra` fields, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of JOBSTREAM_LOG_FORMAT: "json", else text."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def config_dict(log_format: str, level: str = "INFO", access_log: bool = False) -> dict[str, Any]:
    """A logging.config.dictConfig for jobstream's format: the root logger on stderr, gunicorn's loggers
    through it (gunicorn.conf.py gives this to gunicorn as logconfig_dict). gunicorn's access lines only with
    `access_log`: the app logs one line per request already (web/request_log.py)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"jobstream": {"()": lambda: formatter(log_format)}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "jobstream", "stream": "ext://sys.stderr"}
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO" if access_log else "WARNING", "handlers": [], "propagate": True},
        },
    }


def configure(log_format: str, level: str = "INFO") -> None:
    """Set up logging for this process (the worker pool; gunicorn does it from config_dict)."""
    logging.config.dictConfig(config_dict(log_format, level))
