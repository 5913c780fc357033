"""The cost of a job (issue 18): jobstream beside plain RQ 3, Dramatiq and Huey, on no-op jobs.

Each system, in each round, gets its own private redis-server (free port, no persistence), started and stopped
here, and runs the same steps:

  enqueue   N jobs with no worker running (jobstream: Jobs.enqueue_many, RQ: Queue.enqueue_many, both in
            batches of --batch; dramatiq: actor.send in a loop, it has no bulk enqueue for Redis; huey: the
            task called in a loop, nor has huey): jobs/s.
  drain     5 workers started after the enqueue (jobstream: worker.py with JOBSTREAM_CONCURRENCY=5; RQ:
            `rq worker-pool -n 5 -w SimpleWorker`; dramatiq: its CLI, 2 processes x 4 threads as in the issue's
            table; huey: huey_consumer, 5 processes). Redis is polled at 20 Hz (one pipelined round trip of
            one or two ZCARD/HLEN/LLEN) for the jobs that ended. The clock starts at the first poll that sees 1 %
            of the jobs ended, not at the workers' start: start-up (imports, registration, a late-forked
            process) is left out, and so is its CPU. drain jobs/s = jobs ended since then / seconds since then.
  CPU       user + system seconds of the worker's whole process tree (every process and its reaped children)
            and of redis-server, over the same interval, in µs per job ended in it.
  commands  the sum of `calls` over INFO commandstats, over the same interval, per job: Redis 7 counts a
            command a script runs under its own name as well as the EVALSHA (checked at start-up and
            printed), so this is every command Redis executed; the poller's own commands and INFO are taken
            out. The JSON has them by name, and INFO stats total_reads_processed over it (`reads_per_job`),
            which agrees with the round trips below while every pipeline arrives in one read.
  round trips  a second drain of --count-jobs jobs on a fresh redis-server, the workers connected to it
            through a counting TCP proxy in this process: a round trip is a burst of client bytes that
            follows a reply (or opens the connection), so a pipeline or MULTI/EXEC block sent in one or in
            several writes is one round trip, and a blocking pop that waits is one. Per job ended, from the
            1 % mark as above; idle workers' polling counts. The proxy adds latency, so that drain's rate
            is not reported; neither commandstats (which count pipelines' commands one by one) nor
            total_reads_processed (which counts a pipeline split over two reads twice) can tell this. A
            pipeline of hundreds of kilobytes can count more than once (Redis answers its first part while
            the rest is still on its way); a worker's are far smaller.
  bytes     per stored job: jobstream's jobstream:job:<id> hash plus its rq:job:<id> hash, RQ's rq:job:<id>
            hash, by MEMORY USAGE (SAMPLES 0) on a sample of --sample jobs, once queued and once ended (a
            jobstream job's rq:job hash is gone then: result_ttl 0), with OBJECT ENCODING of the jobstream
            (or rq) hash; and for every system INFO used_memory's growth over the enqueue, per job.

Rounds are interleaved (round 1: every system in --systems order, round 2: ...), and each figure printed is the
median over the rounds, with ratios to plain RQ's (of the rates, and of worker + redis CPU). The load average
is printed at the start and after every run.

    python -m bench.engines --jobs 5000 --rounds 3 --json bench/results/engines.json
    python -m bench.engines --systems jobstream --rounds 1 --profile bench/results/engines-pyspy.txt [--profile-gil]

--profile runs py-spy (bench/pyspy.py's binary and summary) on the whole worker tree during the first round's
jobstream drain (which it slows: not a run to take figures from) and prints the top functions and the shares of
jobstream's and RQ's frames; --profile-gil keeps only the samples of threads holding the GIL, i.e. the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from bench import pyspy
from bench.noop_tasks import QUEUE, dramatiq_actor, huey_task, noop
from jobs import Jobs
from jobs.model import ACTIVE, COMPLETED, PENDING
from jobs.store.keys import STATUS_PREFIX, job_key
from scripts.harness import ROOT, RedisServer, Service, free_port

SYSTEMS = ("jobstream", "rq", "dramatiq", "huey")
POLL_SECONDS = 0.05  # 20 Hz
START_FRACTION = 0.01  # the drain's clock starts when this share of the jobs has ended
DRAIN_TIMEOUT = 600.0
WORKERS = 5
BIN = Path(sys.executable).parent


class Engine:
    """How the benchmark enqueues, runs and watches one system's jobs on one redis-server."""

    name = ""
    poll: tuple[str, ...] = ()  # the commands of one `ended` poll, taken out of the counts

    def __init__(self, url: str, options: argparse.Namespace) -> None:
        self.url = url
        self.options = options
        self.count = 0
        self.ids: list[str] = []  # of the jobs, where the system has one per job

    def enqueue(self, count: int) -> None:
        """Create `count` no-op jobs."""
        raise NotImplementedError

    def workers(self, url: str, logdir: Path) -> Service:
        raise NotImplementedError

    def ended(self, pipe: Any) -> Callable[[list[Any]], int]:
        """Queue the poll's commands on `pipe`; returns what turns their replies into the jobs ended."""
        raise NotImplementedError

    def job_keys(self, job_id: str) -> list[str]:
        """The keys that store one job (the first is the one whose encoding is shown); none if not per job."""
        return []

    def check(self, client: redis.Redis, count: int) -> str | None:
        """What went wrong, if not every job succeeded."""
        return None


class Jobstream(Engine):
    name = "jobstream"
    poll = ("zcard", "zcard")

    def enqueue(self, count: int) -> None:
        self.count = count
        jobs = Jobs(redis.Redis.from_url(self.url))
        params = json.loads(self.options.params)
        batch = self.options.batch
        for start in range(0, count, batch):
            items = [
                {"type": self.options.type, "name": f"bench {i}", "params": params}
                for i in range(start, start + min(batch, count - start))
            ]
            self.ids += [job.id for job in jobs.enqueue_many(items)]

    def workers(self, url: str, logdir: Path) -> Service:
        env = {"REDIS_URL": url, "JOBSTREAM_CONCURRENCY": str(WORKERS), "JOBSTREAM_SHUTDOWN_GRACE_SECONDS": "2"}
        return Service("jobstream", [sys.executable, "worker.py"], env, logdir)

    def ended(self, pipe: Any) -> Callable[[list[Any]], int]:
        pipe.zcard(STATUS_PREFIX + PENDING)
        pipe.zcard(STATUS_PREFIX + ACTIVE)
        return lambda replies: self.count - sum(replies)

    def job_keys(self, job_id: str) -> list[str]:
        return [job_key(job_id), f"rq:job:{job_id}"]

    def check(self, client: redis.Redis, count: int) -> str | None:
        completed = client.zcard(STATUS_PREFIX + COMPLETED)
        return None if completed == count else f"{completed} of {count} completed"


class PlainRQ(Engine):
    name = "rq"
    poll = ("zcard", "zcard")

    def enqueue(self, count: int) -> None:
        self.count = count
        queue = Queue(QUEUE, connection=redis.Redis.from_url(self.url), serializer=JSONSerializer)
        batch = self.options.batch
        for start in range(0, count, batch):
            data = [
                Queue.prepare_data(noop, kwargs={"seconds": 0}, description=f"bench {i}")
                for i in range(start, start + min(batch, count - start))
            ]
            self.ids += [job.id for job in queue.enqueue_many(data)]

    def workers(self, url: str, logdir: Path) -> Service:
        args = [str(BIN / "rq"), "worker-pool", QUEUE, "-u", url, "-n", str(WORKERS), "-w", "rq.worker.SimpleWorker"]
        args += ["-S", "rq.serializers.JSONSerializer", "-l", "WARNING", "-P", str(ROOT)]
        return Service("rq", args, {}, logdir)

    def ended(self, pipe: Any) -> Callable[[list[Any]], int]:
        pipe.zcard(f"rq:finished:{QUEUE}")
        pipe.zcard(f"rq:failed:{QUEUE}")
        return sum

    def job_keys(self, job_id: str) -> list[str]:
        return [f"rq:job:{job_id}"]

    def check(self, client: redis.Redis, count: int) -> str | None:
        failed = client.zcard(f"rq:failed:{QUEUE}")
        return f"{failed} of {count} failed" if failed else None


class Dramatiq(Engine):
    """Ended = no longer in the queue's message hash (a message leaves it when acknowledged)."""

    name = "dramatiq"
    poll = ("hlen",)

    def enqueue(self, count: int) -> None:
        self.count = count
        actor = dramatiq_actor(self.url)
        for _ in range(count):
            actor.send(seconds=0)

    def workers(self, url: str, logdir: Path) -> Service:
        args = [sys.executable, "-m", "dramatiq", "bench.noop_tasks", "--processes", "2", "--threads", "4"]
        return Service("dramatiq", args, {"BENCH_ENGINE": "dramatiq", "BENCH_REDIS_URL": url}, logdir)

    def ended(self, pipe: Any) -> Callable[[list[Any]], int]:
        pipe.hlen(f"dramatiq:{QUEUE}.msgs")
        return lambda replies: self.count - replies[0]


class Huey(Engine):
    """Ended = taken from the queue: huey keeps no trace of a running job, so the last few (at most one per
    worker, microseconds each) may still run at the end."""

    name = "huey"
    poll = ("llen",)

    def enqueue(self, count: int) -> None:
        self.count = count
        _, task = huey_task(self.url)
        for _ in range(count):
            task(0)

    def workers(self, url: str, logdir: Path) -> Service:
        args = [sys.executable, "-m", "huey.bin.huey_consumer", "bench.noop_tasks.huey", "-w", str(WORKERS)]
        args += ["-k", "process", "-n", "-q"]
        return Service("huey", args, {"BENCH_ENGINE": "huey", "BENCH_REDIS_URL": url}, logdir)

    def ended(self, pipe: Any) -> Callable[[list[Any]], int]:
        pipe.llen(f"huey.redis.{QUEUE}")
        return lambda replies: self.count - replies[0]


ENGINES: dict[str, type[Engine]] = {"jobstream": Jobstream, "rq": PlainRQ, "dramatiq": Dramatiq, "huey": Huey}


class CountingProxy:
    """A TCP proxy to redis-server, on a thread, that counts round trips: client bursts that follow a reply."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.round_trips = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proxy", daemon=True)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the counting proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _close(self) -> None:
        self._server.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            client_writer.close()
            return
        replied = [True]  # a reply went back since the client last sent: its next bytes open a round trip

        async def requests() -> None:
            with contextlib.suppress(OSError):
                while data := await client_reader.read(65536):
                    if replied[0]:
                        replied[0] = False
                        self.round_trips += 1
                    server_writer.write(data)
                    await server_writer.drain()

        async def replies() -> None:
            with contextlib.suppress(OSError):
                while data := await server_reader.read(65536):
                    replied[0] = True  # before the client can see the reply, so before its next request
                    client_writer.write(data)
                    await client_writer.drain()

        pumps = [asyncio.ensure_future(requests()), asyncio.ensure_future(replies())]
        with contextlib.suppress(asyncio.CancelledError):  # the proxy stops
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:  # one side closed: close both
            pump.cancel()
        for writer in (client_writer, server_writer):
            writer.close()


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its living descendants and every child they reaped."""
    try:
        processes = [psutil.Process(pid)]
        processes += processes[0].children(recursive=True)
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            t = process.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def command_calls(info: dict[str, Any]) -> dict[str, int]:
    """calls per command from INFO commandstats (or INFO all)."""
    return {key.removeprefix("cmdstat_"): value["calls"] for key, value in info.items() if key.startswith("cmdstat_")}


def scripts_counted() -> bool:
    """Whether this redis-server's commandstats count the commands a script runs (Redis 7 does)."""
    with tempfile.TemporaryDirectory(prefix="jobstream-bench-") as tmp:
        server = RedisServer(Path(tmp)).start()
        try:
            client = server.client()
            client.eval("redis.call('set', KEYS[1], '1') return redis.call('incr', KEYS[1])", 1, "k")
            return command_calls(client.info("commandstats")).get("incr", 0) == 1
        finally:
            server.stop()


class Drain:
    """Polls Redis at 20 Hz until every job ended; the snapshots at the 1 % mark and at the end."""

    def __init__(self, engine: Engine, client: redis.Redis, count: int, probes: Callable[[], dict[str, Any]]) -> None:
        self.engine, self.client, self.count, self.probes = engine, client, count, probes
        self.polls = 0

    def run(self) -> tuple[dict[str, Any], dict[str, Any]]:
        threshold = max(1, int(self.count * START_FRACTION))
        first: dict[str, Any] | None = None
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while True:
            done = self.poll()
            if first is None and done >= threshold:
                first = {"done": done, "polls": self.polls, **self.probes()}
            if first is not None and done >= self.count:
                return first, {"done": done, "polls": self.polls, **self.probes()}
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.engine.name}: {done} of {self.count} jobs ended in {DRAIN_TIMEOUT} s")
            time.sleep(POLL_SECONDS)

    def poll(self) -> int:
        with self.client.pipeline(transaction=False) as pipe:
            read = self.engine.ended(pipe)
            replies = pipe.execute()
        self.polls += 1
        return read(replies)


def stored_bytes(client: redis.Redis, engine: Engine, sample: int) -> dict[str, Any]:
    """MEMORY USAGE of a sample of jobs' keys (per job, all its keys) and the encoding of the first key."""
    ids = engine.ids[:: max(1, len(engine.ids) // sample)][:sample]
    if not ids:
        return {}
    with client.pipeline(transaction=False) as pipe:
        for job_id in ids:
            for key in engine.job_keys(job_id):
                pipe.memory_usage(key, samples=0)
            pipe.object("ENCODING", engine.job_keys(job_id)[0])
        replies = pipe.execute()
    per_job = len(engine.job_keys(ids[0])) + 1
    sizes = [sum(r or 0 for r in replies[i : i + per_job - 1]) for i in range(0, len(replies), per_job)]
    encodings = {r.decode() if isinstance(r, bytes) else str(r) for r in replies[per_job - 1 :: per_job]}
    return {"bytes": statistics.median(sizes), "encoding": "/".join(sorted(encodings))}


def measure(system: str, options: argparse.Namespace, workdir: Path, profile: Path | None) -> dict[str, Any]:
    """One round of one system: the timed enqueue and drain, then the counted drain."""
    result = timed(system, options, workdir / "timed", profile)
    result["round_trips_per_job"] = counted(system, options, workdir / "counted")
    return result


def timed(system: str, options: argparse.Namespace, workdir: Path, profile: Path | None) -> dict[str, Any]:
    """The enqueue and the drain on a fresh redis-server, no proxy: rates, CPU, commands and bytes."""
    count = options.jobs
    with contextlib.ExitStack() as stack:
        server = RedisServer(workdir / "redis").start()
        stack.callback(server.stop)
        client = server.client()
        engine = ENGINES[system](server.url, options)
        memory = client.info("memory")["used_memory"]
        started = time.perf_counter()
        engine.enqueue(count)
        enqueue_rate = count / (time.perf_counter() - started)
        queued_memory = (client.info("memory")["used_memory"] - memory) / count
        queued = stored_bytes(client, engine, options.sample)

        workers = engine.workers(server.url, workdir / "logs")
        stack.callback(workers.stop)

        def probes() -> dict[str, Any]:
            info = client.info("all")
            return {
                "at": time.perf_counter(),
                "worker_cpu": tree_cpu(workers.pid),
                "redis_cpu": tree_cpu(server.process.pid if server.process else 0),
                "calls": command_calls(info),
                "reads": info["total_reads_processed"],
            }

        drain = Drain(engine, client, count, probes)
        profiler = None if profile is None else start_profile(workers.pid, profile, options.profile_gil)
        first, last = drain.run()
        if profiler is not None and profile is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes what it has and ends
            print(pyspy.format_profile(pyspy.finish_profiler(profiler, profile)), file=sys.stderr)
            print(format_callers(profile), file=sys.stderr)
        failure = engine.check(client, count)
        if failure:
            raise RuntimeError(f"{system}: {failure}; see {workdir / 'logs'}")
        ended = stored_bytes(client, engine, options.sample)
        jobs = last["done"] - first["done"]
        polls = last["polls"] - first["polls"]
        calls = Counter(last["calls"])
        calls.subtract(first["calls"])
        calls.subtract({name: polls * engine.poll.count(name) for name in engine.poll})  # the poller's
        del calls["info"]  # the probe's
        commands = sum(calls.values())
        return {
            "system": system,
            "enqueue_per_s": enqueue_rate,
            "drain_per_s": jobs / (last["at"] - first["at"]),
            "worker_us_per_job": 1e6 * (last["worker_cpu"] - first["worker_cpu"]) / jobs,
            "redis_us_per_job": 1e6 * (last["redis_cpu"] - first["redis_cpu"]) / jobs,
            "commands_per_job": commands / jobs,
            "reads_per_job": (last["reads"] - first["reads"] - polls - 1) / jobs,
            "queued_memory_per_job": queued_memory,
            "queued_bytes": queued.get("bytes"),
            "queued_encoding": queued.get("encoding"),
            "ended_bytes": ended.get("bytes"),
            "ended_encoding": ended.get("encoding"),
            "commands_by_name_per_job": {name: round(n / jobs, 2) for name, n in calls.most_common() if n},
            "measured_jobs": jobs,
        }


def counted(system: str, options: argparse.Namespace, workdir: Path) -> float:
    """Round trips per job of a drain through the counting proxy."""
    count = min(options.count_jobs, options.jobs)
    with contextlib.ExitStack() as stack:
        server = RedisServer(workdir / "redis").start()
        stack.callback(server.stop)
        proxy = stack.enter_context(CountingProxy(server.port))
        engine = ENGINES[system](server.url, options)
        engine.enqueue(count)
        workers = engine.workers(proxy.url, workdir / "logs")
        stack.callback(workers.stop)
        first, last = Drain(engine, server.client(), count, lambda: {"round_trips": proxy.round_trips}).run()
        return (last["round_trips"] - first["round_trips"]) / (last["done"] - first["done"])


def start_profile(pid: int, path: Path, gil: bool) -> subprocess.Popen[bytes]:
    """py-spy record on the worker tree (--subprocesses) until interrupted: bench.pyspy's, on every worker;
    with `gil`, only the samples of a thread holding the GIL (where the CPU goes, not the waits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    args = [pyspy.binary(), "record", "-p", str(pid), "--subprocesses", "-d", str(int(DRAIN_TIMEOUT)), "-r", "100"]
    args += ["--nonblocking", "--function", "-f", "raw", "-o", str(path), *(["--gil"] if gil else [])]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


FRAME_FILE = re.compile(r"\(([^()]+?):\d+\)$")  # py-spy's "function (file:line)"


def owner(frame: str, own: set[str]) -> str:
    """Whose code a py-spy frame is in. py-spy shortens some of the checkout's paths to the file name."""
    match = FRAME_FILE.search(frame)
    file = match[1] if match else ""
    if file.startswith("redis/"):
        return "redis-py"
    if file.startswith("rq/"):
        return "RQ"
    if file.startswith(("jobs/", "runner/")) or file in own:
        return "jobstream"
    return "the rest (stdlib: json, logging, datetime...)"


def format_callers(path: Path, limit: int = 40) -> str:
    """Whose code the samples end in, and the inclusive shares of jobstream's and RQ's frames: which of their
    steps the time is in."""
    own = {p.name for part in ("jobs", "runner") for p in (ROOT / part).rglob("*.py")} - {"__init__.py"}
    own.add("worker.py")
    leaves: Counter[str] = Counter()
    shares: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        leaves[owner(frames[-1], own)] += int(count)
        for frame in set(frames):
            if owner(frame, own) in ("jobstream", "RQ"):
                shares[frame] += int(count)
    if not total:
        return "no samples"
    lines = ["leaf %   whose code"] + [f"{100 * n / total:6.1f}   {who}" for who, n in leaves.most_common()]
    lines += ["", "incl %   jobstream's and RQ's frames"]
    lines += [f"{100 * n / total:6.1f}   {frame}" for frame, n in shares.most_common(limit)]
    return "\n".join(lines)


COLUMNS = (  # key, heading, format
    ("enqueue_per_s", "enqueue/s", "{:,.0f}"),
    ("drain_per_s", "drain/s", "{:,.0f}"),
    ("worker_us_per_job", "worker µs/job", "{:,.0f}"),
    ("redis_us_per_job", "redis µs/job", "{:,.0f}"),
    ("round_trips_per_job", "round trips/job", "{:.1f}"),
    ("commands_per_job", "commands/job", "{:.1f}"),
    ("queued_bytes", "B/job queued", "{:,.0f}"),
    ("ended_bytes", "B/job ended", "{:,.0f}"),
    ("queued_memory_per_job", "used_memory/job", "{:,.0f}"),
)
RATIOS = {"enqueue_per_s", "drain_per_s"}


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"system": runs[0]["system"], "rounds": len(runs)}
    for key, _, _ in COLUMNS:
        values = [run[key] for run in runs if run.get(key) is not None]
        summary[key] = statistics.median(values) if values else None
    for key in ("queued_encoding", "ended_encoding"):
        summary[key] = "/".join(sorted({run[key] for run in runs if run.get(key)}))
    return summary


def table(summaries: list[dict[str, Any]]) -> str:
    """A Markdown table of the medians, with ratios to plain RQ's."""
    base = next((s for s in summaries if s["system"] == "rq"), None)
    rows = [["system", *(heading for _, heading, _ in COLUMNS)]]
    for summary in summaries:
        row = [summary["system"]]
        for key, _, fmt in COLUMNS:
            value = summary[key]
            cell = "–" if value is None else fmt.format(value)
            if key in RATIOS and base and base[key] and value is not None and summary is not base:
                cell += f" ({value / base[key]:.2f}×)"
            if key == "worker_us_per_job" and base and value is not None and summary is not base:
                ratio = (value + summary["redis_us_per_job"]) / (base[key] + base["redis_us_per_job"])
                cell += f" ({ratio:.2f}× with redis)"
            encoding = summary.get(key.replace("bytes", "encoding")) if key.endswith("_bytes") else None
            if encoding and value is not None:
                cell += f" ({encoding})"
            row.append(cell)
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.engines", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=5000, help="jobs per timed run (default 5000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated, of " + ", ".join(SYSTEMS))
    parser.add_argument("--batch", type=int, default=500, help="enqueue_many's batch (jobstream and RQ)")
    parser.add_argument("--type", default="demo.sleep", help="jobstream's job type (default demo.sleep)")
    parser.add_argument("--params", default='{"seconds": 0}', help="its params, JSON (default seconds 0)")
    parser.add_argument("--count-jobs", type=int, default=1000, help="jobs in the drain through the counting proxy")
    parser.add_argument("--sample", type=int, default=50, help="jobs whose keys MEMORY USAGE measures")
    parser.add_argument("--json", type=Path, help="write every run and the medians here")
    parser.add_argument("--profile", type=Path, help="py-spy the first round's jobstream drain into this file")
    parser.add_argument("--profile-gil", action="store_true", help="only samples holding the GIL (py-spy --gil)")
    options = parser.parse_args()

    systems = [s.strip() for s in options.systems.split(",") if s.strip()]
    for system in systems:
        if system not in ENGINES:
            parser.error(f"unknown system {system!r}")
    missing = [s for s in systems if s in ("dramatiq", "huey") and importlib.util.find_spec(s) is None]
    if missing:
        print(f"skipped (not installed, see requirements-dev.txt): {', '.join(missing)}")
        systems = [s for s in systems if s not in missing]

    started = datetime.now(UTC)
    print(f"{started:%Y-%m-%d %H:%M} UTC, load average {load()}, {psutil.cpu_count()} CPUs")
    print(f"commandstats count the commands scripts run: {'yes' if scripts_counted() else 'NO'}")
    runs: dict[str, list[dict[str, Any]]] = {system: [] for system in systems}
    workdir = Path(tempfile.mkdtemp(prefix="jobstream-bench-engines-"))
    try:
        for number in range(1, options.rounds + 1):
            for system in systems:
                profile = options.profile if number == 1 and system == "jobstream" else None
                run = measure(system, options, workdir / f"{number}-{system}", profile)
                runs[system].append(run)
                print(
                    f"round {number} {system:<9} enqueue {run['enqueue_per_s']:8,.0f}/s  drain "
                    f"{run['drain_per_s']:7,.0f}/s  cpu {run['worker_us_per_job']:6,.0f} + "
                    f"{run['redis_us_per_job']:5,.0f} µs  {run['round_trips_per_job']:5.1f} rt  "
                    f"{run['commands_per_job']:6.1f} cmd  (load {load()})",
                    flush=True,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    summaries = [medians(runs[system]) for system in systems]
    print()
    print(f"medians of {options.rounds} rounds, {options.jobs:,} jobs each ({options.count_jobs:,} for round trips)")
    print(table(summaries))
    print(f"load average after: {load()}")
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        document = {"started": started.isoformat(), "options": {k: str(v) for k, v in vars(options).items()}}
        options.json.write_text(json.dumps({**document, "medians": summaries, "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
