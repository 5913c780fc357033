"""`make run` (scripts/run.py under honcho): everything comes up, and Ctrl-C stops it in order, leaving nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from scripts.harness import ROOT, free_port, request, wait_until
from tests.helpers import create


class Run:
    """scripts/run.py as `make run` starts it, with the embedded Redis, on ports and a data dir of the test's own."""

    def __init__(self, tmp_path: Path, redis_port: int, web_port: int) -> None:
        env = {
            **os.environ,
            "JOBSTREAM_BIND": f"127.0.0.1:{web_port}",
            "JOBSTREAM_REDIS_PORT": str(redis_port),
            "JOBSTREAM_REDIS_DIR": str(tmp_path / "redis"),
            "JOBSTREAM_SHUTDOWN_GRACE_SECONDS": "10",
        }
        env.pop("REDIS_URL", None)
        self.log = (tmp_path / "run.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "scripts/run.py"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # as a terminal runs it: Ctrl-C goes to this process group
        )
        self.base = f"http://127.0.0.1:{web_port}"
        try:
            wait_until(lambda: self._healthy() and self._workers() >= 5, 60, "make run to come up")
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool:
        try:
            return request(self.base, "GET", "/healthz")[0] == 200
        except OSError:
            return False

    def _workers(self) -> int:
        return len(request(self.base, "GET", "/api/stats")[1]["workers"])

    def processes(self) -> list[psutil.Process]:
        return [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]

    def ctrl_c(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.ctrl_c()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                for process in self.processes():
                    process.kill()
        self.log.close()


def test_make_run_comes_up_and_ctrl_c_lets_a_running_job_finish_then_leaves_nothing(tmp_path: Path) -> None:
    redis_port, web_port = free_port(), free_port()
    run = Run(tmp_path, redis_port, web_port)
    try:
        job = create(run.base, "finishing", steps=4, step_seconds=0.5)
        wait_until(lambda: request(run.base, "GET", f"/api/jobs/{job['id']}")[1]["job"]["progress"] > 0, 10, "running")
        started = run.processes()
        assert {"redis-server", "gunicorn", "worker.py"} <= {part for p in started for part in _names(p)}
        run.ctrl_c()
        run.process.wait(30)
        assert not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], "left behind"
    finally:
        run.stop()
    again = Run(tmp_path, redis_port, web_port)  # the same data dir: the AOF kept what happened
    try:
        assert request(again.base, "GET", f"/api/jobs/{job['id']}")[1]["job"]["status"] == "completed"
    finally:
        again.stop()


def _names(process: psutil.Process) -> set[str]:
    """What a process is, by its command line: redis-server, gunicorn, worker.py, ..."""
    try:
        return {Path(part).name for part in process.cmdline()} | {process.name()}
    except psutil.Error:
        return set()
