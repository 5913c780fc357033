"""The job store: job state in Redis beside RQ's queues, every change one Lua script; reads, upkeep, retention."""
