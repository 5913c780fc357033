"""The worker skin's entry point: `python worker.py` runs the pool of RQ workers in the foreground."""

from __future__ import annotations

import logging
import os

from jobs.config import Settings
from jobs.connection import connect, wait_for_redis
from jobs.store.lifecycle import JobStore
from jobs.store.orphans import sweep_orphans
from jobs.telemetry import logs
from jobs.telemetry.health import warn_about
from jobs.types.registry import load
from runner.pool import JobstreamPool

logger = logging.getLogger("jobstream.worker")


def main() -> None:
    """Run the pool in the foreground until SIGINT/SIGTERM."""
    settings = Settings.from_env()
    logs.configure(settings.log_format)  # before the fork: every worker process logs the same way
    load(settings.job_type_modules)  # imported once here: every forked worker inherits them
    connection = connect(settings.redis_url)
    wait_for_redis(connection)
    warn_about(connection)  # once per pool, not once per worker process
    store = JobStore(connection, settings)
    sweep_orphans(store)
    logger.info("%d workers on queue %r (pid %d)", settings.concurrency, settings.queue, os.getpid())
    JobstreamPool(settings, store).start(logging_level="INFO")


if __name__ == "__main__":
    main()
