"""What a Redis failover costs (issue 11): the drill of tests/failover_drill.py, repeated per scenario.

Each run starts its own Sentinel group (a primary, its replicas, three sentinels with down-after 2 s; all
redis-server on free ports), one worker pool (5 workers) and one gunicorn server on
REDIS_URL=redis+sentinel://..., then: a client creates demo.sleep jobs through the web one after another
(the create latency is measured over the first 40), three demo.web_agent jobs run, a browser-like client
follows the stream, and the primary is killed with SIGKILL. In the `partition` scenarios the replicas are
stopped (SIGSTOP) and their links filled first, so that the primary goes on accepting writes that no replica
has (as with a partition or a replica far behind), until 20 creates were answered or one waited 1 s.

Then `--creates` (1000) creates through the Python API (Jobs.enqueue) on one Sentinel group with two
replicas, JOBSTREAM_REDIS_MIN_REPLICAS 0 and 1 in alternating batches of 50: what the WAIT costs a create
without the web's own noise. (The drill's create latencies, over HTTP, are printed too.)

Per run: accepted creates (201 before the kill) lost (404 afterwards), the failover (until every sentinel
names the new primary), the web back (the first 201 after the kill), the stream live again (the first event
published after the kill at the client, which reconnects as EventSource does: 3 s after the stream ended,
with Last-Event-ID), and how the stream resumed. Prints every run and the medians; JSON in bench/results/.

    python -m bench.failover --repeat 3 --creates 1000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from jobs import Jobs
from scripts.sentinel import SentinelGroup
from tests.failover_drill import Figures, Scenario, describe, run_drill

SCENARIOS = {
    "kill": Scenario(),
    "partition": Scenario(partition=True),
    "kill-wait": Scenario(min_replicas=1, replicas=2),
    "partition-wait": Scenario(min_replicas=1, replicas=2, partition=True),
}
RESULTS = Path(__file__).with_name("results")
BATCH = 50


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.failover", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario")
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="run only these scenarios (repeatable)")
    parser.add_argument("--fanout", choices=("request", "process"), default="request")
    parser.add_argument("--creates", type=int, default=1000, help="creates per setting for the WAIT's cost (0: none)")
    args = parser.parse_args()
    names = args.only or list(SCENARIOS)
    runs: dict[str, list[Figures]] = {name: [] for name in names}
    for number in range(args.repeat):
        for name in names:  # interleaved, so that the machine's mood falls on every scenario alike
            scenario = dataclasses.replace(SCENARIOS[name], fanout=args.fanout)
            workdir = Path(tempfile.mkdtemp(prefix=f"failover-{name}-"))
            try:
                figures = run_drill(scenario, workdir)
            except AssertionError as exc:  # reported, and its logs kept; the other runs go on
                print(f"run {number + 1}, {name}: FAILED ({exc}); logs in {workdir}", flush=True)
                continue
            shutil.rmtree(workdir)
            runs[name].append(figures)
            print(f"run {number + 1}, {name}: {describe(figures)}", flush=True)
    report({name: done for name, done in runs.items() if done})
    latencies = wait_cost(args.creates) if args.creates else {}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"failover-{time.strftime('%Y%m%d-%H%M%S')}.json"
    results = {name: [_plain(f) for f in done] for name, done in runs.items()}
    path.write_text(json.dumps({"drills": results, "create_ms": latencies}, indent=1))
    print(f"\nwritten to {path}")


def report(runs: dict[str, list[Figures]]) -> None:
    """One line per scenario: lost of accepted summed over its runs, then medians."""
    print(
        "\n| scenario | lost / accepted before the kill | failover | web back | stream live | resumed by"
        " | create p50 | create p90 |\n|---|---|---|---|---|---|---|---|"
    )
    for name, done in runs.items():

        def median(field: str, done: list[Figures] = done) -> float:
            return statistics.median(getattr(f, field) for f in done)

        lost = sum(len(f.lost) for f in done)
        accepted = sum(f.accepted_before for f in done)
        ways = ", ".join(sorted({f.resumed_by for f in done}))
        print(
            f"| {name} ({done[0].scenario}) | {lost} / {accepted} | {median('failover'):.1f} s"
            f" | {median('web_again'):.1f} s | {median('stream_again'):.1f} s | {ways}"
            f" | {median('create_p50_ms'):.1f} ms | {median('create_p90_ms'):.1f} ms |"
        )


def wait_cost(creates: int) -> dict[str, list[float]]:
    """Jobs.enqueue's latency with MIN_REPLICAS 0 and 1 on the same Sentinel group, batches interleaved."""
    with tempfile.TemporaryDirectory(prefix="failover-wait-") as workdir:
        group = SentinelGroup(Path(workdir), replicas=2).start()
        try:
            ways = {n: Jobs.from_url(group.url, redis_min_replicas=n) for n in (0, 1)}
            times: dict[str, list[float]] = {f"MIN_REPLICAS={n}": [] for n in ways}
            for _ in range(0, creates, BATCH):
                for n, jobs in ways.items():
                    for _ in range(BATCH):
                        start = time.perf_counter()
                        jobs.enqueue("demo.sleep", name="wait cost", params={"seconds": 0})
                        times[f"MIN_REPLICAS={n}"].append((time.perf_counter() - start) * 1000)
        finally:
            group.stop()
    print("\n| Jobs.enqueue on a Sentinel group | p50 | p90 | p99 |\n|---|---|---|---|")
    for way, samples in times.items():
        ordered = sorted(samples)
        p50, p90, p99 = (ordered[int(len(ordered) * q)] for q in (0.5, 0.9, 0.99))
        print(f"| {way} ({len(ordered)} creates) | {p50:.2f} ms | {p90:.2f} ms | {p99:.2f} ms |")
    return times


def _plain(figures: Figures) -> dict:
    plain = dataclasses.asdict(figures)
    plain["scenario"] = str(figures.scenario)
    plain["running"] = [{k: job.get(k) for k in ("status", "attempts", "error")} for job in figures.running]
    return plain


if __name__ == "__main__":
    main()
