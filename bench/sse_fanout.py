"""SSE fan-out benchmark (issue 3): many raw-socket SSE clients on one gunicorn gevent worker.

Starts the real stack (private redis-server, 5 RQ workers, ONE gunicorn gevent worker in the given
fan-out mode), opens N SSE streams from separate load-generator processes, and measures one of:

  load    (default) jobs × rate events/s for `--seconds`: delivery, lag p50/p99/max, RSS, CPU
  --idle  N silent streams for `--hold` seconds: heartbeats on time, RSS per stream
  --cycles K  K connect/disconnect cycles, `--batch` at a time: Redis clients, RSS and streams.open back?

Lag = the client's receive time − the event's `timestamp` (stamped by the RQ worker with ms precision,
same machine clock). Prints a table and writes JSON to bench/results/.

    python -m bench.sse_fanout --mode process --clients 1000 --jobs 5 --rate 10 --seconds 20
    python -m bench.sse_fanout --mode request --clients 5000 --idle
    python -m bench.sse_fanout --mode request --cycles 1000 --batch 100
    python -m bench.sse_fanout --mode process --clients 1000 --base ../previous-main --repeat 3   # A/B, alternating
    python -m bench.sse_fanout --mode process --clients 50 --idle-job 5000 --heartbeat 15        # ?job= streams
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench.pyspy import finish_profiler, start_profiler
from bench.sse_fleet import ClientFleet, percentile
from bench.sse_tables import CYCLE_ROWS, IDLE_ROWS, LOAD_ROWS, medians, print_table
from bench.stack import Probe, Stack
from jobs.stream.events import EVENTS_KEY, JOB_UPDATE
from scripts.harness import ROOT

RESULTS = ROOT / "bench" / "results"
FDS_PER_STREAM = 2  # the client's socket here, and in request mode the server's Redis connection
WARMUP_STREAMS = 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sse_fanout", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=("request", "process"), default="request", help="JOBSTREAM_FANOUT")
    parser.add_argument("--clients", type=int, default=100, help="SSE streams to open (N)")
    parser.add_argument("--client-procs", type=int, default=2, help="load-generator processes")
    parser.add_argument("--jobs", type=int, default=5, help="concurrent demo.web_agent jobs")
    parser.add_argument("--rate", type=float, default=10, help="events/s per job (step_seconds = 1/rate)")
    parser.add_argument("--seconds", type=float, default=20, help="how long each job runs")
    parser.add_argument("--heartbeat", type=int, default=5, help="JOBSTREAM_HEARTBEAT_SECONDS")
    parser.add_argument("--drain", type=float, default=60, help="seconds to wait for late events after the jobs end")
    parser.add_argument("--repeat", type=int, default=1, help="load runs on the same stack; medians reported")
    parser.add_argument("--idle", action="store_true", help="idle streams: heartbeats and RSS per stream")
    parser.add_argument("--hold", type=float, help="idle: seconds to hold the streams (default 2.5 heartbeats)")
    parser.add_argument("--cycles", type=int, help="connect/disconnect cycles instead of a load run")
    parser.add_argument("--batch", type=int, default=100, help="cycles: streams opened and closed together")
    parser.add_argument("--sets", type=int, default=2, help="cycles: how many times to do the K cycles")
    parser.add_argument(
        "--connect-concurrency",
        type=int,
        default=64,
        help="streams being opened at once (all load generators together); the rest queue",
    )
    parser.add_argument("--connect-timeout", type=float, default=120, help="seconds for all N streams to open")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn gevent workers (WEB_CONCURRENCY)")
    parser.add_argument(
        "--idle-job", type=int, default=0, help="load: also hold this many ?job= streams of a quiet job"
    )
    parser.add_argument("--base-workers", type=int, help="gunicorn workers of the --base server (default: --workers)")
    parser.add_argument(
        "--base", type=Path, help="load: also run the server from this checkout (the previous main), alternating runs"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the gunicorn worker during the run")
    parser.add_argument("--out", type=Path, help="result JSON (default: bench/results/<scenario>-....json)")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.client_procs < 1 or args.jobs < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--clients, --client-procs, --jobs, --rate and --seconds must be positive")
    if not 1 <= round(args.rate * args.seconds) <= 1000:
        parser.error("rate × seconds (the job's steps) must be between 1 and 1000")
    if args.idle and args.cycles:
        parser.error("--idle and --cycles are separate scenarios")
    return args


def raise_fd_limit(streams: int) -> int:
    """Raise RLIMIT_NOFILE (inherited by every process started here) to fit the streams; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FDS_PER_STREAM * streams + 1024
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < wanted:
        sys.exit(f"sse_fanout: {streams} streams need ~{wanted} file descriptors, the hard limit is {hard}")
    return soft


# -- scenarios ---------------------------------------------------------------------------------


def warm_up(stack: Stack, fleet: ClientFleet) -> None:
    """Open and close a few streams, so one-off costs (fan-out thread, pools, imports) precede the baseline."""
    pubsub = stack.pubsub_clients()  # the RQ workers' command channels
    _, failed = fleet.connect(WARMUP_STREAMS, 30)
    if failed:
        raise RuntimeError(f"warm-up streams failed: {failed}")
    fleet.close()
    settle(stack, pubsub + (1 if stack.mode == "process" else 0))


def settle(stack: Stack, pubsub_baseline: int) -> dict[str, Any]:
    """Wait (bounded: two heartbeats + 20 s) until every stream is gone server-side; report how long it took."""
    started = time.monotonic()
    deadline = started + 2 * stack.heartbeat + 20
    while True:
        try:
            open_streams: int | None = stack.open_streams()
        except OSError:  # a worker still choking on its backlog (or just replaced) answers late
            open_streams = None
        pubsub = stack.pubsub_clients()
        if (open_streams == 0 and pubsub <= pubsub_baseline) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    return {
        "settle_s": round(time.monotonic() - started, 2),
        "streams_open_after": open_streams,
        "redis_pubsub_after": pubsub,
        "redis_clients_after": stack.redis_clients(),
        # Who holds the connections left: by last command (ping = the web's command pool, psubscribe = a stream).
        "redis_clients_by_cmd": dict(Counter(c.get("cmd", "?") for c in stack.redis.client_list())),
    }


def baseline(stack: Stack) -> dict[str, Any]:
    return {
        "redis_clients_before": stack.redis_clients(),
        "redis_pubsub_before": stack.pubsub_clients(),
        "rss_before_mb": round(stack.rss() / 2**20, 2),
    }


def run_load(
    stack: Stack, fleet: ClientFleet, args: argparse.Namespace, profile_to: Path | None, quiet: ClientFleet | None
) -> dict[str, Any]:
    """One load run: N streams (and `--idle-job` quiet ones), then jobs × rate events/s for `seconds`, then
    disconnect."""
    result = baseline(stack)
    result["loadavg_before"] = round(os.getloadavg()[0], 2)
    worker_pid = stack.worker.pid
    started = time.monotonic()
    if quiet is not None:
        idle, idle_failed = quiet.connect(args.idle_job, args.connect_timeout)
        result.update(idle_job_connected=idle, idle_job_failed=sum(idle_failed.values()))
    ready, failed = fleet.connect(args.clients, args.connect_timeout)
    result.update(clients_connected=ready, clients_failed=sum(failed.values()), failures=failed)
    result["connect_s"] = round(time.monotonic() - started, 2)
    result["redis_pubsub_during"] = stack.pubsub_clients()
    fleet.reset()

    steps = max(1, round(args.rate * args.seconds))
    probe = Probe(stack, fleet.pids + (quiet.pids if quiet else [])).start()
    profiler = start_profiler(stack.worker.pid, args.seconds + 5, profile_to) if profile_to else None
    started, started_wall = time.monotonic(), time.time()  # each job's first event is stamped after this
    ids, took, post_errors = stack.create_jobs(args.jobs, steps, 1 / args.rate)
    finished = stack.wait_ended(timeout=3 * args.seconds + 60)
    duration = time.monotonic() - started
    published = count_published(stack, started_wall - 0.001)
    drain(fleet, published, deadline=args.drain)
    stats = fleet.stats()
    result.update(probe.stop())
    if profiler is not None:
        result["profile"] = finish_profiler(profiler, profile_to)

    final = fleet.close()
    if quiet is not None:
        quiet_stats = quiet.stats()
        result["idle_job_events"] = sum(quiet_stats["counts"])  # must stay 0: none of theirs was published
        quiet.close()
    result.update(settle(stack, result["redis_pubsub_before"]))
    counts = stats["counts"] or [0]
    received = sum(stats["counts"])
    # Late events stretch the delivery past the jobs' end: count the rate over the whole delivery.
    window = max(duration, stats["last_event"] - started_wall)
    result.update(
        jobs_finished=finished,
        jobs_created=len(ids),
        job_post_errors=post_errors,
        job_create_max_ms=round(1000 * max(took, default=0), 1),
        worker_replaced=stack.refresh_worker() or stack.worker.pid != worker_pid,
        duration_s=round(duration, 2),
        events_published=published,
        published_per_s=round(published / duration, 1),
        events_per_client_min=min(counts),
        events_per_client_median=statistics.median(counts),
        events_per_client_max=max(counts),
        delivered_pct=round(100 * received / max(published * ready, 1), 2),
        delivery_window_s=round(window, 2),
        delivered_per_s=round(received / window, 1),
        expected_per_s=round(published * ready / duration, 1),
        all_delivered=(
            ready == args.clients and len(ids) == args.jobs and min(counts) == published and not stats["dropped"]
        ),
        dropped=stats["dropped"],
        duplicates=stats["dupes"],
        resets=stats["resets"],
        lag_p50_ms=percentile(stats["hist"], 0.50),
        lag_p99_ms=percentile(stats["hist"], 0.99),
        lag_max_ms=round(1000 * stats["max_lag"], 1),
        still_open_at_close=final["open"],
        # CPU cost of one event written to one stream, whatever share of the CPU the worker got.
        worker_us_per_delivery=round(result["worker_cpu_s"] / max(received, 1) * 1e6, 1),
        clients_us_per_delivery=round(result["clients_cpu_s"] / max(received, 1) * 1e6, 1),
        busy_cores=round(result["machine_cpu_pct"] / 100 * (os.cpu_count() or 1), 2),
        rss_after_mb=round(stack.rss() / 2**20, 2),
    )
    return result


def run_idle(stack: Stack, fleet: ClientFleet, args: argparse.Namespace) -> dict[str, Any]:
    """N silent streams held for a few heartbeats: are the pings on time, and what does a stream cost?"""
    hold = args.hold or 2.5 * args.heartbeat
    result = baseline(stack)
    started = time.monotonic()
    ready, failed = fleet.connect(args.clients, args.connect_timeout)
    result.update(clients_connected=ready, clients_failed=sum(failed.values()), failures=failed)
    result["connect_s"] = round(time.monotonic() - started, 2)
    probe = Probe(stack, fleet.pids, interval=1.0).start()
    fleet.reset()  # ping gaps count from here: every stream is open
    time.sleep(hold)
    stats = fleet.stats()
    rss = stack.rss()
    result["redis_pubsub_during"] = stack.pubsub_clients()
    result.update(probe.stop())
    fleet.close()
    result.update(settle(stack, result["redis_pubsub_before"]))

    tolerance = max(1.0, 0.1 * args.heartbeat)
    gaps = stats["max_gaps"] or [math.inf]
    expected_pings = int(hold // args.heartbeat)
    late = sum(1 for gap in gaps if gap > args.heartbeat + tolerance)
    result.update(
        hold_s=hold,
        heartbeat_s=args.heartbeat,
        pings_min=min(stats["pings"], default=0),
        pings_expected=expected_pings,
        ping_gap_max_s=round(max(gaps), 2),
        ping_gap_median_s=round(statistics.median(gaps), 2),
        streams_late=late,
        pings_on_time=late == 0 and min(stats["pings"], default=0) >= expected_pings and stats["open"] == ready,
        dropped=stats["dropped"],
        rss_with_streams_mb=round(rss / 2**20, 2),
        kb_per_stream=round((rss - result["rss_before_mb"] * 2**20) / max(ready, 1) / 1024, 1),
        rss_after_mb=round(stack.rss() / 2**20, 2),
    )
    return result


def run_cycles(stack: Stack, fleet: ClientFleet, args: argparse.Namespace) -> list[dict[str, Any]]:
    """K streams opened and closed, `batch` at a time, then a wait until the server let them all go: is
    everything back to baseline? Done `--sets` times: growth from one set to the next would be a leak,
    the first set's growth alone may be the allocator's high-water mark."""
    before = baseline(stack)
    before["streams_open_before"] = stack.open_streams()
    sets = []
    for _ in range(args.sets):
        result = dict(before)
        opened, failures, peak_open = 0, Counter(), 0
        started = time.monotonic()
        for number in range(math.ceil(args.cycles / args.batch)):
            batch = min(args.batch, args.cycles - number * args.batch)
            ready, failed = fleet.connect(batch, args.connect_timeout)
            opened += ready
            failures.update(failed)
            peak_open = max(peak_open, stack.open_streams())
            fleet.close()
        result["cycle_s"] = round(time.monotonic() - started, 2)
        result["rss_peak_mb"] = round(stack.rss() / 2**20, 2)
        result.update(settle(stack, before["redis_pubsub_before"]))
        rss_after = stack.rss()
        result.update(
            cycles=args.cycles,
            batch=args.batch,
            clients_connected=opened,
            clients_failed=sum(failures.values()),
            failures=dict(failures),
            streams_open_peak=peak_open,
            rss_after_mb=round(rss_after / 2**20, 2),
            rss_growth_mb=round(rss_after / 2**20 - before["rss_before_mb"], 2),
            back_to_baseline=(
                result["streams_open_after"] == 0
                and result["redis_pubsub_after"] <= before["redis_pubsub_before"]
                and result["redis_clients_after"] <= before["redis_clients_before"]
            ),
        )
        sets.append(result)
    return sets


def count_published(stack: Stack, since: float) -> int:
    """job-update events in the replay stream since `since` (epoch s): this run's jobs, the only ones.

    Counted by time rather than by the ids the POSTs returned, since a POST whose worker was killed
    may have created its job without answering.
    """
    count, start = 0, f"{int(since * 1000)}-0"
    for _ in range(1000):  # at most 1,000 pages of 1,000
        entries = stack.redis.xrange(EVENTS_KEY, min=start, count=1000)
        count += sum(1 for _, fields in entries if fields[b"event"] == JOB_UPDATE.encode())
        if len(entries) < 1000:
            break
        start = "(" + entries[-1][0].decode()
    return count


def drain(fleet: ClientFleet, published: int, deadline: float) -> None:
    """Wait until every client has every event, or nothing arrived for 3 s, or the deadline."""
    stop = time.monotonic() + deadline
    last_total, last_change = -1, time.monotonic()
    while time.monotonic() < stop:
        total, fewest = fleet.progress()
        if fewest >= published:
            return
        if total != last_total:
            last_total, last_change = total, time.monotonic()
        elif time.monotonic() - last_change > 3:
            return
        time.sleep(0.2)


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit = raise_fd_limit(args.clients + args.idle_job + WARMUP_STREAMS)
    scenario = "idle" if args.idle else "cycles" if args.cycles else "load"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"sse-{scenario}-{args.mode}-n{args.clients if not args.cycles else args.cycles}"
    if scenario == "load":
        name += f"-{args.jobs}x{args.rate:g}"
    out = args.out or RESULTS / f"{name}-{stamp}.json"
    logdir = RESULTS / "logs" / f"{name}-{stamp}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the finally blocks stop every process

    load_before = os.getloadavg()
    roots = [("base", args.base.resolve()), ("new", ROOT)] if args.base and scenario == "load" else [("new", ROOT)]
    print(f"{name}: redis-server, 5 RQ workers and {args.workers} gunicorn gevent worker(s) ({args.mode} fan-out)")
    print(f"  for {', '.join(f'{label} = {root}' for label, root in roots)}")
    print(f"  fd limit {limit}, load average {load_before[0]:.2f} on {os.cpu_count()} CPUs; logs in {logdir}")
    stacks: dict[str, Stack] = {}
    fleets: dict[str, tuple[ClientFleet, ClientFleet | None]] = {}
    runs_of: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in roots}
    warnings: list[str] = []
    try:
        for label, root in roots:
            workers = (args.base_workers or args.workers) if label == "base" else args.workers
            stacks[label] = stack = Stack(args.mode, args.heartbeat, logdir / label, root=root, workers=workers)
            fleet = ClientFleet(stack.host, stack.port, args.client_procs, args.connect_concurrency)
            quiet = None
            if args.idle_job:
                path = f"/api/jobs/stream?job={uuid.uuid4().hex}"
                quiet = ClientFleet(stack.host, stack.port, 1, args.connect_concurrency, path=path)
            fleets[label] = (fleet, quiet)
            warm_up(stack, fleet)
        stack, (fleet, _) = stacks["new"], fleets["new"]
        if scenario == "idle":
            runs_of["new"].append(run_idle(stack, fleet, args))
            rows = IDLE_ROWS
        elif scenario == "cycles":
            runs_of["new"].extend(run_cycles(stack, fleet, args))
            rows = CYCLE_ROWS
        else:
            rows = LOAD_ROWS
            for number in range(args.repeat):  # alternating, so both see the same machine
                for label, _ in roots:
                    profile_to = out.with_suffix(f".{label}.pyspy{number + 1}.txt") if args.profile else None
                    run = run_load(stacks[label], *fleets[label][:1], args, profile_to, fleets[label][1])
                    runs_of[label].append(run)
                    print(
                        f"  {label} run {number + 1}/{args.repeat}: lag p99 {run['lag_p99_ms']} ms, all delivered "
                        f"{run['all_delivered']}, {run['worker_us_per_delivery']} µs/delivery, load {run['loadavg_1m']}"
                    )
        for stack in stacks.values():
            warnings += stack.warnings_in_log()
    finally:
        for fleet, quiet in fleets.values():
            fleet.shutdown()
            if quiet is not None:
                quiet.shutdown()
        for stack in stacks.values():
            stack.close()
    runs = runs_of["new"]

    title = f"SSE fan-out, {args.mode} mode, " + (
        f"{args.clients} idle streams"
        if scenario == "idle"
        else f"{args.cycles} connect/disconnect cycles"
        if scenario == "cycles"
        else f"{args.clients} clients × {args.jobs} jobs × {args.rate:g} ev/s for {args.seconds:g} s"
    )
    if args.idle_job:
        title += f", with {args.idle_job} idle ?job= streams"
    if args.workers > 1:
        title += f", {args.workers} web workers"
    for label, _ in roots:
        print_table(f"{title} [{label}]", rows, runs_of[label], "set" if scenario == "cycles" else "run")
    if len(roots) > 1:
        print_table(f"{title}: medians", rows, [medians(runs_of[label]) for label, _ in roots], "base/new")
    for run in runs:
        if run.get("profile", {}).get("top"):
            print(f"\n{(ROOT / run['profile']['top']).read_text()}")
    if warnings:
        print(f"\ngunicorn log warnings ({len(warnings)}): " + "\n  ".join(warnings[:10]))
    document = {
        "scenario": scenario,
        "mode": args.mode,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "started": stamp,
        "runs": runs,
        "median": medians(runs),
        "base": {"root": str(args.base), "runs": runs_of["base"], "median": medians(runs_of["base"])}
        if "base" in runs_of
        else None,
        "gunicorn_warnings": warnings,
    }
    out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"\nresult: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
