"""The load-generator processes as one, from the benchmark's side: commands out, merged figures back."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from bench.sse_clients import serve


class ClientFleet:
    """The load-generator processes as one: commands go to every process, replies are merged."""

    def __init__(
        self, host: str, port: int, processes: int, inflight: int = 64, path: str = "/api/jobs/stream"
    ) -> None:
        """`inflight`: streams being opened at once, over all processes (the rest wait their turn)."""
        share = max(1, -(-inflight // processes))
        context = multiprocessing.get_context("fork")
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for number in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=serve, args=(host, port, path, share, theirs), name=f"sse-load-{number}", daemon=True
            )
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def _ask(self, *command: Any, timeout: float = 60) -> list[Any]:
        for pipe in self.pipes:
            pipe.send(command)
        return [self._reply(pipe, timeout) for pipe in self.pipes]

    @staticmethod
    def _reply(pipe: Connection, timeout: float) -> Any:
        if not pipe.poll(timeout):
            raise TimeoutError("a load-generator process did not answer")
        return pipe.recv()

    def connect(self, count: int, timeout: float = 60) -> tuple[int, dict[str, int]]:
        """Open `count` streams spread over the processes; returns (ready, failures by reason)."""
        shares = [count // len(self.pipes) + (1 if i < count % len(self.pipes) else 0) for i in range(len(self.pipes))]
        for pipe, share in zip(self.pipes, shares, strict=True):
            pipe.send(("connect", share, timeout))
        ready, failed = 0, Counter()
        for pipe in self.pipes:
            _, ok, reasons = self._reply(pipe, timeout + 30)
            ready += ok
            failed.update(reasons)
        return ready, dict(failed)

    def progress(self) -> tuple[int, int]:
        """(events received by all clients, the fewest any client received)."""
        replies = self._ask("progress", timeout=30)
        return sum(r[0] for r in replies), min(r[1] for r in replies)

    def reset(self) -> None:
        self._ask("reset", timeout=30)

    def stats(self) -> dict[str, Any]:
        return merge(self._ask("stats", timeout=60))

    def close(self) -> dict[str, Any]:
        """Close every stream (FIN, as a browser tab closing) and return the final figures."""
        return merge(self._ask("close", timeout=60))

    def shutdown(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("exit",))
            except OSError:
                pass
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)


def merge(replies: list[dict[str, Any]]) -> dict[str, Any]:
    """One process's figures combined with the others'."""
    hist: Counter[int] = Counter()
    merged: dict[str, Any] = {"counts": [], "pings": [], "max_gaps": []}
    for reply in replies:
        hist.update({int(k): v for k, v in reply["hist"].items()})
        for key in ("counts", "pings", "max_gaps"):
            merged[key] += reply[key]
    for key in ("clients", "open", "dropped", "dupes", "resets"):
        merged[key] = sum(r[key] for r in replies)
    merged["max_lag"] = max((r["max_lag"] for r in replies), default=0.0)
    merged["last_event"] = max((r["last_event"] for r in replies), default=0.0)
    merged["hist"] = hist
    return merged


def percentile(hist: Counter[int], fraction: float) -> int | None:
    """The lag in ms (1 ms buckets) that `fraction` of the samples do not exceed."""
    total = sum(hist.values())
    if not total:
        return None
    wanted = fraction * total
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= wanted:
            return value
    return max(hist)
