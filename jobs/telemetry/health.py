"""What a process checks of its Redis at start-up: settings under which Redis would lose jobs by itself."""

from __future__ import annotations

import logging

import redis

from jobs.connection import text

logger = logging.getLogger("jobstream.redis")

ADVICE = "see the README, 'Deploying on several machines'"


def risks(client: redis.Redis) -> list[str]:
    """Why this Redis could lose jobs and events by itself: eviction, no persistence. What CONFIG or INFO
    cannot tell (a managed Redis that disables them) is left unsaid rather than guessed."""
    found = []
    config = _config(client, "maxmemory", "maxmemory-policy", "save")
    policy, maxmemory = config.get("maxmemory-policy"), config.get("maxmemory")
    if policy is not None and policy != "noeviction" and maxmemory not in (None, "0"):
        found.append(
            f"Redis evicts keys when full (maxmemory {maxmemory} bytes, maxmemory-policy {policy}): jobs, their "
            "events and queue entries can vanish; set maxmemory-policy noeviction"
        )
    try:
        aof = str(client.info("persistence").get("aof_enabled", ""))
    except redis.ResponseError:
        aof = ""
    if aof == "0" and config.get("save") == "":
        found.append(
            "Redis has persistence off (appendonly no, no save points): a restart of Redis loses every job; "
            "set appendonly yes with appendfsync everysec"
        )
    return found


def warn_about(client: redis.Redis) -> list[str]:
    """Log a warning for each of this Redis's risks (once: call it once per process); returns them."""
    try:
        found = risks(client)
    except redis.RedisError as exc:  # a start-up check must not stop the start
        logger.warning("could not check Redis's eviction and persistence settings: %s", exc)
        return []
    for risk in found:
        logger.warning("%s (%s)", risk, ADVICE, extra={"redis_risk": risk})
    return found


def _config(client: redis.Redis, *names: str) -> dict[str, str]:
    """CONFIG GET of `names`; empty where CONFIG is disabled or renamed, as on many managed Redis services."""
    values: dict[str, str] = {}
    for name in names:
        try:
            reply = client.config_get(name)
        except redis.ResponseError:
            logger.info("could not read Redis's %s (CONFIG is disabled): not checked", name)
            return values
        for key, value in reply.items():
            values[text(key)] = text(value)
    return values
