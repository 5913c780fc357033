"""The benchmark's tables: one row per figure, one column per run (and their median)."""

from __future__ import annotations

import statistics
from typing import Any

LOAD_ROWS = (
    ("clients connected / failed", lambda r: f"{r['clients_connected']} / {r['clients_failed']}"),
    ("connect time (s)", "connect_s"),
    ("jobs created (POST errors)", lambda r: f"{r['jobs_created']} ({len(r['job_post_errors'])})"),
    ("gunicorn worker killed and replaced", "worker_replaced"),
    ("events published", "events_published"),
    ("published events/s", "published_per_s"),
    ("events per client min/median/max", lambda r: _triple(r, "events_per_client")),
    ("all delivered (dropped, dupes)", lambda r: f"{r['all_delivered']} ({r['dropped']}, {r['duplicates']})"),
    ("delivered % (within --drain s of the end)", "delivered_pct"),
    ("delivered events/s (expected)", lambda r: f"{r['delivered_per_s']} ({r['expected_per_s']})"),
    ("jobs' duration / delivery window (s)", lambda r: f"{r['duration_s']} / {r.get('delivery_window_s', '-')}"),
    ("lag p50 / p99 / max (ms)", lambda r: f"{r['lag_p50_ms']} / {r['lag_p99_ms']} / {r['lag_max_ms']}"),
    ("worker RSS peak (MB)", "worker_rss_mb"),
    ("worker CPU % (load gens %, machine %)", lambda r: _cpu(r)),
    ("worker waiting for a CPU %", lambda r: _waited(r)),
    ("worker CPU µs per delivered event", "worker_us_per_delivery"),
    ("load gens' CPU µs per delivered event", lambda r: r.get("clients_us_per_delivery", "-")),
    ("machine busy cores / load average (before run)", lambda r: _machine(r)),
    ("idle ?job= streams (failed) / events they got", lambda r: _idle_job(r)),
    ("/healthz p50 / max (ms) (timeouts)", lambda r: _health(r)),
    ("job POST max (ms)", "job_create_max_ms"),
    ("Redis clients before/during/after", lambda r: _clients(r)),
    ("Redis pub/sub clients before/during/after", lambda r: _pubsub(r)),
    ("settle after disconnect (s)", "settle_s"),
)

IDLE_ROWS = (
    ("clients connected / failed", lambda r: f"{r['clients_connected']} / {r['clients_failed']}"),
    ("connect time (s)", "connect_s"),
    ("heartbeat / hold (s)", lambda r: f"{r['heartbeat_s']} / {r['hold_s']}"),
    ("pings per stream min (expected)", lambda r: f"{r['pings_min']} ({r['pings_expected']})"),
    ("ping gap median / max (s)", lambda r: f"{r['ping_gap_median_s']} / {r['ping_gap_max_s']}"),
    ("streams late / dropped", lambda r: f"{r['streams_late']} / {r['dropped']}"),
    ("pings on time", "pings_on_time"),
    ("worker RSS before / with streams (MB)", lambda r: f"{r['rss_before_mb']} / {r['rss_with_streams_mb']}"),
    ("KB per stream", "kb_per_stream"),
    ("worker CPU % (load gens %, machine %)", lambda r: _cpu(r)),
    ("worker waiting for a CPU %", lambda r: _waited(r)),
    ("Redis clients before/during/after", lambda r: _clients(r)),
    ("Redis pub/sub clients before/during/after", lambda r: _pubsub(r)),
    ("settle after disconnect (s)", "settle_s"),
    ("worker RSS after (MB)", "rss_after_mb"),
)

CYCLE_ROWS = (
    ("cycles (batch)", lambda r: f"{r['cycles']} ({r['batch']})"),
    ("clients connected / failed", lambda r: f"{r['clients_connected']} / {r['clients_failed']}"),
    ("cycling time (s)", "cycle_s"),
    ("streams.open peak / after", lambda r: f"{r['streams_open_peak']} / {r['streams_open_after']}"),
    ("Redis clients before / after", lambda r: f"{r['redis_clients_before']} / {r['redis_clients_after']}"),
    ("Redis pub/sub before / after", lambda r: f"{r['redis_pubsub_before']} / {r['redis_pubsub_after']}"),
    (
        "worker RSS before / peak / after (MB)",
        lambda r: f"{r['rss_before_mb']} / {r['rss_peak_mb']} / {r['rss_after_mb']}",
    ),
    ("settle after last disconnect (s)", "settle_s"),
    ("Redis clients after, by last command", lambda r: _by_cmd(r)),
    ("back to baseline", "back_to_baseline"),
)


def _triple(r: dict[str, Any], key: str) -> str:
    return f"{r[key + '_min']} / {r[key + '_median']} / {r[key + '_max']}"


def _cpu(r: dict[str, Any]) -> str:
    return f"{r['worker_cpu_pct']} ({r['clients_cpu_pct']}, {r['machine_cpu_pct']})"


def _by_cmd(r: dict[str, Any]) -> str:
    return " ".join(f"{cmd}={n}" for cmd, n in sorted(r["redis_clients_by_cmd"].items(), key=lambda kv: -kv[1]))


def _health(r: dict[str, Any]) -> str:
    return f"{r['healthz_p50_ms']} / {r['healthz_max_ms']} ({r.get('healthz_failures', 0)})"


def _machine(r: dict[str, Any]) -> str:
    return f"{r.get('busy_cores', '-')} / {r.get('loadavg_1m', '-')} ({r.get('loadavg_before', '-')})"


def _idle_job(r: dict[str, Any]) -> str:
    if "idle_job_connected" not in r:
        return "-"
    return f"{r['idle_job_connected']} ({r['idle_job_failed']}) / {r['idle_job_events']}"


def _waited(r: dict[str, Any]) -> str:
    return f"{r.get('worker_runqueue_pct', '-')}"


def _clients(r: dict[str, Any]) -> str:
    return f"{r['redis_clients_before']} / {r['redis_clients_during']} / {r['redis_clients_after']}"


def _pubsub(r: dict[str, Any]) -> str:
    return f"{r['redis_pubsub_before']} / {r['redis_pubsub_during']} / {r['redis_pubsub_after']}"


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per key: the median of the runs' numbers, the common value otherwise (or the last one)."""
    merged: dict[str, Any] = {}
    for key, value in runs[-1].items():
        values = [run.get(key) for run in runs]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) == len(values):
            middle = statistics.median(numbers)
            if isinstance(middle, float):
                middle = int(middle) if middle.is_integer() else round(middle, 2)
            merged[key] = middle
        elif all(isinstance(v, bool) for v in values):
            merged[key] = all(values)
        else:
            merged[key] = value
    return merged


def print_table(title: str, rows: tuple[Any, ...], runs: list[dict[str, Any]], run_name: str = "run") -> None:
    with_median = len(runs) > 1 and run_name == "run"
    columns = [*runs, medians(runs)] if with_median else runs
    names = run_name.split("/") if "/" in run_name else [f"{run_name} {i + 1}" for i in range(len(runs))]
    header = ["metric", *names] + (["median"] if with_median else [])
    table = [header]
    for label, get in rows:
        cells = []
        for run in columns:
            try:
                cells.append(str(get(run) if callable(get) else run[get]))
            except KeyError:
                cells.append("-")
        table.append([label, *cells])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print(f"\n{title}")
    for number, row in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if number == 0:
            print("  ".join("-" * width for width in widths))
