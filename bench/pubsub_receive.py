"""The receive path of request mode alone: N pub/sub subscriptions in one gevent process, CPU per delivery.

Each of N greenlets holds its own PSUBSCRIBE and reads every event, either through redis-py's
`PubSub.get_message` (what request mode does) or straight from the socket with a hiredis reader.
Nothing is written to any client: this is the floor of one subscription per client.

    python -m bench.pubsub_receive --subscribers 500 --events 400 --repeat 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the measuring subprocesses run from here

KINDS = ("redis-py", "hiredis")
PAYLOAD = b"1-0\njob-update\n" + b"x" * 600  # an event as the scripts publish it, about the usual size


def measure(kind: str, subscribers: int, events: int, port: int) -> float:
    """CPU µs per delivered event for `kind` (runs in a fresh process: gevent patches everything)."""
    from gevent import monkey

    monkey.patch_all()
    import resource

    import gevent
    import hiredis
    import redis

    pool = redis.ConnectionPool(host="127.0.0.1", port=port, max_connections=subscribers + 10)
    client = redis.Redis(connection_pool=pool)
    counts = [0] * subscribers

    def through_redis_py(index: int) -> None:
        pubsub = client.pubsub()
        pubsub.psubscribe("job:*:progress")
        while counts[index] < events:
            message = pubsub.get_message(timeout=5)
            while message is not None:
                if message["type"] == "pmessage":
                    counts[index] += 1
                    message["data"].decode().split("\n", 2)
                message = pubsub.get_message(timeout=0)

    def through_hiredis(index: int) -> None:
        connection = pool.get_connection()
        connection.send_command("PSUBSCRIBE", "job:*:progress")
        reader = hiredis.Reader()
        while counts[index] < events:
            reader.feed(connection._sock.recv(65536))
            while (message := reader.gets()) is not False:
                if message[0] == b"pmessage":
                    counts[index] += 1
                    message[3].decode().split("\n", 2)

    target = through_redis_py if kind == "redis-py" else through_hiredis
    greenlets = [gevent.spawn(target, i) for i in range(subscribers)]
    while len(client.client_list(_type="pubsub")) < subscribers:
        gevent.sleep(0.05)
    publisher = redis.Redis(host="127.0.0.1", port=port)
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(events):
        publisher.publish("job:x:progress", PAYLOAD)
        gevent.sleep(0.005)  # the publisher's pace: about 200 events/s
    gevent.joinall(greenlets, timeout=60)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu * 1e6 / sum(counts)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pubsub_receive", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--one", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(measure(args.one[0], args.subscribers, args.events, int(args.one[1])))
        return

    from scripts.harness import RedisServer

    server = RedisServer(Path(tempfile.mkdtemp(prefix="jobstream-bench-")) / "redis").start()
    costs: dict[str, list[float]] = {kind: [] for kind in KINDS}
    try:
        for _ in range(args.repeat):
            for kind in KINDS:  # interleaved, so both see the same machine
                command = [sys.executable, "-m", "bench.pubsub_receive", "--subscribers", str(args.subscribers)]
                command += ["--events", str(args.events), "--one", kind, str(server.port)]
                out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
                costs[kind].append(float(out.strip().splitlines()[-1]))
    finally:
        server.stop()
    base = sorted(costs["redis-py"])[len(costs["redis-py"]) // 2]
    print(f"{'receive path':<10} {'runs (CPU µs per delivery)':<30} {'median':>8} {'vs redis-py':>12}")
    for kind in KINDS:
        median = sorted(costs[kind])[len(costs[kind]) // 2]
        runs = " / ".join(f"{c:.1f}" for c in costs[kind])
        print(f"{kind:<10} {runs:<30} {median:>8.1f} {median / base:>12.2f}")


if __name__ == "__main__":
    main()
