"""Request mode's delivery path in parts: N pub/sub subscriptions in one gevent process, CPU per delivery.

Each kind reads every event of N subscriptions, each its own PSUBSCRIBE:

- `redis-py`: a greenlet per subscription, through `PubSub.get_message` (request mode before issue 3's fix);
- `hiredis`: a greenlet per subscription, straight from its socket with a hiredis reader (before issue 21);
- `loop`: one loop over the OS selector, `RedisSubscription.drain` (request mode's read now), nothing written;
- `loop+send`: request mode now: `RequestFanout`'s loop, each event sent to its stream's TCP socket;
- `send`: the write alone: each event's bytes sent to N TCP sockets from one loop, nothing read.

The TCP sockets' other ends are read by a separate process, whose CPU is not counted.

    python -m bench.pubsub_receive --subscribers 500 --events 400 --repeat 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the measuring subprocesses run from here

KINDS = ("redis-py", "hiredis", "loop", "loop+send", "send")
BODY = b"\njob-update\n" + b"x" * 600  # an event as the scripts publish it (after its id), about the usual size


def payload(n: int) -> bytes:
    return b"%d-0%s" % (n + 1, BODY)


def drain_forever(port_file: str) -> None:
    """Accept TCP connections and read them until they close (the clients of `loop+send` and `send`)."""
    import selectors
    import socket

    server = socket.create_server(("127.0.0.1", 0), backlog=4096)
    Path(port_file).write_text(str(server.getsockname()[1]))
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is server:
                connection, _ = server.accept()
                selector.register(connection, selectors.EVENT_READ)
            elif not key.fileobj.recv(1 << 20):  # type: ignore[union-attr]
                selector.unregister(key.fileobj)
                key.fileobj.close()


def measure(kind: str, subscribers: int, events: int, port: int, drain_port: int) -> float:
    """CPU µs per delivered event for `kind` (runs in a fresh process: gevent patches everything)."""
    from gevent import monkey

    monkey.patch_all()
    import resource

    import gevent
    import gevent.event
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

    def through_loop(index: int) -> None:
        subscriptions = [RedisSubscription(client) for _ in range(subscribers)]
        selector = Selector()
        for subscription in subscriptions:
            selector.register(subscription.raw.fileno(), selectors.EVENT_READ, subscription)
        ready.set()
        while sum(counts) < events * subscribers:
            select.select([selector.fileno()], [], [], 5)
            gevent.sleep(COALESCE_SECONDS)  # as the fan-out does
            for key, _ in selector.select(0):
                counts[0] += len(key.data.drain())

    def through_fanout(index: int) -> None:
        fanout = RequestFanout(client, queue_limit=events, heartbeat=3600, selector=Selector())
        feeds = [fanout.subscribe() for _ in range(subscribers)]
        for feed in feeds:
            feed.go_direct(socket.create_connection(("127.0.0.1", drain_port)), False, (0, 0))
        ready.set()
        last = (events, 0)
        while any(feed.last_sent < last for feed in feeds):
            gevent.sleep(0.01)
        counts[0] = events * subscribers

    def only_send(index: int) -> None:
        sockets = [socket.create_connection(("127.0.0.1", drain_port)) for _ in range(subscribers)]
        raw = [s._sock for s in sockets]  # the OS sockets, as the fan-out writes them
        ready.set()
        for n in range(events):
            frame = frame_of(payload(n))
            for sock in raw:
                sock.send(frame, socket.MSG_DONTWAIT)
            counts[0] += subscribers
            gevent.sleep(0.005)

    import select
    import selectors
    import socket

    Selector = monkey.get_original("selectors", "DefaultSelector")  # noqa: N806  # epoll, as app.py gives it

    from jobs.stream.events import frame as framed
    from jobs.stream.feeds import RequestFanout
    from jobs.stream.subscription import COALESCE_SECONDS, RedisSubscription

    def frame_of(data: bytes) -> bytes:
        event_id, name, body = data.decode().split("\n", 2)
        return framed(name, body, event_id)

    ready = gevent.event.Event()
    many = {"redis-py": through_redis_py, "hiredis": through_hiredis}
    one = {"loop": through_loop, "loop+send": through_fanout, "send": only_send}
    if kind in many:
        greenlets = [gevent.spawn(many[kind], i) for i in range(subscribers)]
        while len(client.client_list(_type="pubsub")) < subscribers:
            gevent.sleep(0.05)
    else:
        greenlets = [gevent.spawn(one[kind], 0)]
        ready.wait(60)
    publisher = redis.Redis(host="127.0.0.1", port=port)
    before = resource.getrusage(resource.RUSAGE_SELF)
    if kind != "send":
        for n in range(events):
            publisher.publish("job:x:progress", payload(n))
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
    parser.add_argument("--one", nargs=3, metavar=("KIND", "PORT", "DRAIN_PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--drain", metavar="PORT_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drain:
        drain_forever(args.drain)
    if args.one:
        print(measure(args.one[0], args.subscribers, args.events, int(args.one[1]), int(args.one[2])))
        return

    from scripts.harness import RedisServer, wait_until

    scratch = Path(tempfile.mkdtemp(prefix="jobstream-bench-"))
    server = RedisServer(scratch / "redis").start()
    port_file = scratch / "drain.port"
    drain = subprocess.Popen([sys.executable, "-m", "bench.pubsub_receive", "--drain", str(port_file)], cwd=ROOT)
    costs: dict[str, list[float]] = {kind: [] for kind in KINDS}
    try:
        drain_port = wait_until(lambda: port_file.exists() and port_file.read_text(), 10, "the draining process")
        for _ in range(args.repeat):
            for kind in KINDS:  # interleaved, so all see the same machine
                command = [sys.executable, "-m", "bench.pubsub_receive", "--subscribers", str(args.subscribers)]
                command += ["--events", str(args.events), "--one", kind, str(server.port), str(drain_port)]
                out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
                costs[kind].append(float(out.strip().splitlines()[-1]))
    finally:
        drain.kill()
        drain.wait()
        server.stop()
    base = sorted(costs["redis-py"])[len(costs["redis-py"]) // 2]
    print(f"{'path':<10} {'runs (CPU µs per delivery)':<30} {'median':>8} {'vs redis-py':>12}")
    for kind in KINDS:
        median = sorted(costs[kind])[len(costs[kind]) // 2]
        runs = " / ".join(f"{c:.1f}" for c in costs[kind])
        print(f"{kind:<10} {runs:<30} {median:>8.1f} {median / base:>12.2f}")


if __name__ == "__main__":
    main()
