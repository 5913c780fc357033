"""How long the tests wait, and for what: every time bound of the suite, sized for a loaded 2-core machine.

Two kinds. *Patience* is how long a test waits for something that happens anyway: generous, since it costs
nothing when the test passes and only delays a failure. A *promise* is a latency the product promises and
the test checks: raising one weakens its test, so those stay as tight as the promise.
"""

from __future__ import annotations

from scripts.harness import START_SECONDS, STOP_SECONDS

__all__ = [
    "BURST_SECONDS",
    "CANCEL_SECONDS",
    "DEPARTURE_SECONDS",
    "EVENT_SECONDS",
    "IDLE_STOP_SECONDS",
    "JOB_SECONDS",
    "OPEN_SECONDS",
    "QUIET_SECONDS",
    "START_SECONDS",  # a process (redis-server, gunicorn, the pool, one pool worker) comes up
    "STOP_SECONDS",  # a signalled process exits
    "STREAMS_RELEASED_SECONDS",
]

# -- patience ---------------------------------------------------------------------------------------------

OPEN_SECONDS = 30.0  # an SSE stream answers with `retry:`, also when hundreds open at once
EVENT_SECONDS = 10.0  # what the test just set off shows: an event at a client, a status in the API, a stream ended
JOB_SECONDS = 30.0  # jobs of a few short steps run to their end through the real pool
BURST_SECONDS = 60.0  # thousands of events (megabytes) reach a client

# -- waiting for something that must not happen: the test waits this long every time it runs --------------

QUIET_SECONDS = 2.0

# -- promises under test ----------------------------------------------------------------------------------

CANCEL_SECONDS = 2.0  # a running job ends within 2 s of its cancel
DEPARTURE_SECONDS = 2.5  # a departed stream is noticed within two heartbeats (1 s in the test stack)
IDLE_STOP_SECONDS = 5.0  # the promise is 3 s (bench.stop_idle: median 2.1 s); headroom for a loaded 2-core machine
STREAMS_RELEASED_SECONDS = 7.0  # gunicorn's stop with 200 open streams, well under its 10 s graceful_timeout
