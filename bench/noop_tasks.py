"""The no-op job of the other engines that bench.engines runs, bound to the Redis its environment names.

Imported by their workers (RQ's pool, the dramatiq and huey_consumer commands) and by the benchmark that enqueues
for them. BENCH_ENGINE says which engine's broker to build at import (dramatiq and huey bind their tasks then);
BENCH_REDIS_URL which private redis-server it talks to.
"""

from __future__ import annotations

import os
from typing import Any

QUEUE = "bench"  # every engine's queue (dramatiq's queue_name, huey's name, RQ's queue)
ENGINE = os.environ.get("BENCH_ENGINE", "")
URL = os.environ.get("BENCH_REDIS_URL", "")


def noop(seconds: float = 0) -> None:
    """The job: nothing, so what is measured is what the engine costs around it."""


def dramatiq_actor(url: str) -> Any:
    """A dramatiq actor running `noop` on a RedisBroker of `url`, made the global broker (its CLI wants one)."""
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url)
    dramatiq.set_broker(broker)
    return dramatiq.actor(noop, actor_name="noop", queue_name=QUEUE, max_retries=0, broker=broker)


def huey_task(url: str) -> tuple[Any, Any]:
    """A RedisHuey of `url` (blocking reads, its default) and its `noop` task."""
    from huey import RedisHuey

    instance = RedisHuey(QUEUE, url=url)
    return instance, instance.task(retries=0)(noop)


if ENGINE == "dramatiq":
    actor = dramatiq_actor(URL)
elif ENGINE == "huey":
    huey, task = huey_task(URL)
