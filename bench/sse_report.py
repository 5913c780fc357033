"""Summarise bench/results/sse-*.json as the Markdown tables of docs/BENCHMARKS.md, and plot lag p99 vs N.

    python -m bench.sse_report                      # tables of the newest result per configuration
    python -m bench.sse_report --plot docs/sse_lag_p99.png

Runs made with --profile are left out (py-spy slows the worker); where a configuration was run more
than once, the newest file wins and its median over repeats is shown.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def newest(scenario: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The newest non-profiled result of each configuration of `scenario`."""
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for path in sorted(RESULTS.glob(f"sse-{scenario}-*.json")):
        document = json.loads(path.read_text())
        args = document["args"]
        if args.get("profile"):
            continue
        key = (document["mode"], args["clients"], args["jobs"], args["rate"], args.get("connect_concurrency", 128))
        if scenario == "cycles":
            key = (document["mode"], args["cycles"], args["batch"])
        document["file"] = path.name
        found[key] = document
    return found


def tidy(values: dict[str, Any]) -> dict[str, Any]:
    """Medians of whole numbers print as whole numbers (1000, not 1000.0)."""
    return {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in values.items()}


def load_table() -> list[str]:
    lines = [
        "| mode | N | jobs × ev/s | runs | connected / failed | events published | per client min / median / max "
        "| delivered ev/s (expected) | lag p50 / p99 / max ms | worker RSS MB | worker CPU % (waiting for CPU %) "
        "| CPU µs per delivery | /healthz p50 / max ms | Redis clients before / during / after | worker killed |",
        "|---|---:|---|---:|---|---:|---|---|---|---:|---|---:|---|---|---|",
    ]
    for (mode, clients, jobs, rate, concurrency), doc in sorted(newest("load").items()):
        if concurrency != 64:
            continue
        m = tidy(doc["median"])
        killed = any(run.get("worker_replaced") for run in doc["runs"])
        cpu = "—" if killed else f"{m['worker_cpu_pct']} ({m.get('worker_runqueue_pct', '—')})"
        per_us = "—" if killed else m.get("worker_us_per_delivery", "—")
        lines.append(
            f"| {mode} | {clients} | {jobs} × {rate:g} | {len(doc['runs'])} "
            f"| {m['clients_connected']} / {m['clients_failed']} | {m['events_published']} "
            f"| {m['events_per_client_min']} / {m['events_per_client_median']} / {m['events_per_client_max']} "
            f"| {m['delivered_per_s']} ({m['expected_per_s']}) "
            f"| {m['lag_p50_ms']} / **{m['lag_p99_ms']}** / {m['lag_max_ms']} | {m['worker_rss_mb']} | {cpu} "
            f"| {per_us} | {m['healthz_p50_ms']} / {m['healthz_max_ms']} "
            f"| {m['redis_clients_before']} / {m['redis_clients_during']} / {m['redis_clients_after']} "
            f"| {'**yes, every run**' if killed else 'no'} |"
        )
    return lines


def idle_table() -> list[str]:
    lines = [
        "| mode | N | connected / failed | heartbeat / hold s | pings min (expected) | ping gap median / max s "
        "| late | worker RSS before / with streams MB | KB per stream | Redis clients before / during / after "
        "| Redis pub/sub during |",
        "|---|---:|---|---|---|---|---:|---|---:|---|---:|",
    ]
    for (mode, clients, *_), doc in sorted(newest("idle").items()):
        r = doc["runs"][0]
        lines.append(
            f"| {mode} | {clients} | {r['clients_connected']} / {r['clients_failed']} "
            f"| {r['heartbeat_s']} / {r['hold_s']} | {r['pings_min']} ({r['pings_expected']}) "
            f"| {r['ping_gap_median_s']} / {r['ping_gap_max_s']} | {r['streams_late']} "
            f"| {r['rss_before_mb']} / {r['rss_with_streams_mb']} | **{r['kb_per_stream']}** "
            f"| {r['redis_clients_before']} / {r['redis_clients_during']} / {r['redis_clients_after']} "
            f"| {r['redis_pubsub_during']} |"
        )
    return lines


def cycles_table() -> list[str]:
    lines = [
        "| mode | cycles (batch) | set | connected / failed | streams.open peak / after | settle s "
        "| Redis clients before / after (after: by last command) | Redis pub/sub before / after "
        "| worker RSS before / peak / after MB |",
        "|---|---|---:|---|---|---:|---|---|---|",
    ]
    for (mode, cycles, batch), doc in sorted(newest("cycles").items()):
        for number, r in enumerate(doc["runs"], 1):
            counts = sorted(r["redis_clients_by_cmd"].items(), key=lambda kv: -kv[1])
            by_cmd = ", ".join(f"{cmd.replace('|', ' ')} {n}" for cmd, n in counts)
            lines.append(
                f"| {mode} | {cycles} ({batch}) | {number} | {r['clients_connected']} / {r['clients_failed']} "
                f"| {r['streams_open_peak']} / {r['streams_open_after']} | {r['settle_s']} "
                f"| {r['redis_clients_before']} / {r['redis_clients_after']} ({by_cmd}) "
                f"| {r['redis_pubsub_before']} / {r['redis_pubsub_after']} "
                f"| {r['rss_before_mb']} / {r['rss_peak_mb']} / {r['rss_after_mb']} |"
            )
    return lines


def plot(path: Path) -> None:
    """Lag p99 (median over repeats) against N, both modes, 5 jobs × 10 ev/s; killed workers marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for mode, colour in (("process", "tab:blue"), ("request", "tab:red")):
        points = sorted(
            (clients, doc)
            for (m, clients, jobs, rate, concurrency), doc in newest("load").items()
            if m == mode and jobs == 5 and rate == 10 and concurrency == 64
        )
        xs = [clients for clients, _ in points]
        ys = [doc["median"]["lag_p99_ms"] for _, doc in points]
        axes.plot(xs, ys, "o-", color=colour, label=f"{mode} fan-out")
        killed = [(c, d["median"]["lag_p99_ms"]) for c, d in points if any(r.get("worker_replaced") for r in d["runs"])]
        if killed:
            axes.plot(
                [c for c, _ in killed],
                [y for _, y in killed],
                "x",
                color="black",
                markersize=12,
                label="worker killed (WORKER TIMEOUT): p99 of what arrived",
            )
    axes.axhline(150, color="grey", linestyle=":", linewidth=1)
    axes.text(105, 160, "target 150 ms (process, 1000 clients)", fontsize=8, color="grey")
    axes.axhline(500, color="grey", linestyle="--", linewidth=1)
    axes.text(105, 530, "target 500 ms (process, 2000 clients)", fontsize=8, color="grey")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xticks([100, 200, 500, 1000, 2000])
    axes.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes.set_ylim(top=3e5)
    axes.set_xlabel("SSE clients on one gunicorn gevent worker (N)")
    axes.set_ylabel("lag p99 (ms), median of repeats")
    axes.set_title("SSE fan-out: 5 jobs × 10 events/s, 2-core shared machine")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sse_report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--plot", type=Path, help="write the lag p99 vs N plot (PNG) here")
    args = parser.parse_args(argv)
    for title, lines in (("load", load_table()), ("idle", idle_table()), ("cycles", cycles_table())):
        print(f"\n### {title}\n")
        print("\n".join(lines))
    if args.plot:
        plot(args.plot)
        print(f"\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
