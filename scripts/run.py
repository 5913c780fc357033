"""`make run`: make sure Redis is there, then run web, workers (and the embedded Redis) under honcho."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import honcho.environ
import honcho.manager
import honcho.printer
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs.config import RUN_URL_FILE, Settings  # noqa: E402
from jobs.connection import connect  # noqa: E402
from runner.lifetime import STOP_SIGNALS  # noqa: E402
from scripts.harness import free_port  # noqa: E402

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
KILL_AFTER = 10  # seconds beyond the workers' grace before what still runs is killed (a stuck job takes 3 s more)


class UrlFile:
    """<checkout>/var/redis.url: the URL of the Redis this run uses, where the terminal's `jobstream` and
    `Jobs.from_env()` find it. Written (whole, by a rename) once that Redis answers; removed at the end
    unless another run has written its own since."""

    def __init__(self, path: Path, url: str) -> None:
        self.path = path
        self.url = url
        self.written = False

    def write_when_answering(self) -> bool:
        """Write the file if Redis answers now and it is not written yet; whether it was written now."""
        if self.written:
            return False
        client = connect(self.url)
        try:
            client.ping()
        except redis.RedisError:  # not up yet (or still loading its AOF)
            return False
        finally:
            client.connection_pool.disconnect()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(f"{self.url}\n")  # for this user only: a REDIS_URL may hold a password
        partial.replace(self.path)
        self.written = True
        return True

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.written and self.path.read_text().strip() == self.url:
                self.path.unlink()


class Manager(honcho.manager.Manager):
    """honcho's process manager with the stop that `make run` promises. honcho's own loop ignores a second
    Ctrl-C, fails (KeyError) on a Ctrl-C that comes before every process has started, leaving the started
    ones running, and ends every process 5 s after the first one stops.

    Here each stop signal is one round: every process gets its stop signal (SIGTERM unless `stop_with`
    names another) to its process group once per round, a process that starts late as soon as it has a
    pid, and the processes named in `last` only once all the others have ended. The first round lets
    running jobs finish; a second one ends them at once (the workers take a second stop as a forced one).
    When a process ends by itself, the others get the first round. `kill_wait` seconds after it, SIGKILL.
    Until the first round, each turn of the loop writes `url_file` if it is not written and Redis answers."""

    def __init__(
        self, kill_wait: float, stop_with: dict[str, signal.Signals], last: frozenset[str], url_file: UrlFile
    ) -> None:
        super().__init__(honcho.printer.Printer(sys.stdout))
        self.url_file = url_file
        self.kill_wait = kill_wait
        self.stop_with = stop_with
        self.last = last
        self._signals: list[int] = []  # stop signals received, acted on by the loop
        self._rounds = 0
        self._sent: dict[str, int] = {}  # rounds sent to each process

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)

    def loop(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)
        self._start()
        first_round = None
        while not (self._all_started() and self._all_stopped()):
            self._handle_events()
            while self._signals:
                signum = signal.Signals(self._signals.pop(0))
                self._system_print(f"{signum.name} received\n")
                if self._rounds == 0:
                    self.returncode = EXIT_CODES[signum]
                self._rounds += 1
            if self._rounds == 0 and self._any_stopped():
                self._rounds = 1
            if self._rounds and first_round is None:
                first_round = time.monotonic()
            if self._rounds == 0 and self.url_file.write_when_answering():
                self._system_print(f"Redis answers: {self.url_file.path} names it for jobstream and Jobs.from_env()\n")
            self._send_rounds()
            if first_round is not None and time.monotonic() - first_round > self.kill_wait:
                self._kill_all()
                first_round = float("inf")  # once

    def _handle_events(self) -> None:
        """honcho's handling of its processes' messages (lines, start, stop), for 0.1 s at most."""
        try:
            msg = self.events.get(timeout=0.1)
        except queue.Empty:
            return
        process = self._processes[msg.name]
        if msg.type == "line":
            self._printer.write(msg)
        elif msg.type == "start":
            process["pid"] = msg.data["pid"]
            self._system_print(f"{msg.name} started (pid={msg.data['pid']})\n")
        elif msg.type == "stop":
            process["returncode"] = msg.data["returncode"]
            self._system_print(f"{msg.name} stopped (rc={msg.data['returncode']})\n")
            if self.returncode is None:
                self.returncode = msg.data["returncode"]

    def _send_rounds(self) -> None:
        others_running = any("returncode" not in p for n, p in self._processes.items() if _kind(n) not in self.last)
        for name, process in self._processes.items():
            if _kind(name) in self.last and others_running:
                continue
            while "pid" in process and "returncode" not in process and self._sent.get(name, 0) < self._rounds:
                self._sent[name] = self._sent.get(name, 0) + 1
                self._signal(name, self.stop_with.get(_kind(name), signal.SIGTERM))

    def _kill_all(self) -> None:
        for name, process in self._processes.items():
            if "pid" in process and "returncode" not in process:
                self._signal(name, signal.SIGKILL)

    def _signal(self, name: str, sig: signal.Signals) -> None:
        """Signal the process group that honcho started the process in (a shell and all it runs)."""
        pid = self._processes[name]["pid"]
        self._system_print(f"sending {sig.name} to {name} (pid {pid})\n")
        with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already
            os.killpg(pid, sig)


def _kind(name: str) -> str:
    """The Procfile entry of a process honcho runs: web.1 -> web."""
    return name.rpartition(".")[0]


def fresh_metrics_dir(path: Path) -> None:
    """Make PROMETHEUS_MULTIPROC_DIR and empty it: the series of a previous run's processes are not this run's."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def main() -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    processes = ["web", "worker"]
    url = env.get("REDIS_URL", "").strip()
    if url:
        try:
            connect(url).ping()  # redis+sentinel:// too
        except (redis.RedisError, ValueError) as exc:
            sys.exit(f"jobstream: REDIS_URL={url} does not answer ({exc}). Start that Redis or unset REDIS_URL.")
    else:
        port = env.get("JOBSTREAM_REDIS_PORT") or str(free_port())
        env["JOBSTREAM_REDIS_PORT"] = port
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        processes.insert(0, "redis")
    bind = env.setdefault("JOBSTREAM_BIND", "127.0.0.1:8000")
    # One metrics directory for web and workers (GET /metrics adds up their processes), emptied per run.
    fresh_metrics_dir(Path(env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(ROOT / "var" / "metrics"))))
    print(
        f"jobstream: Redis at {env['REDIS_URL']}; open http://{bind} "
        "(Ctrl-C stops everything, letting running jobs finish; Ctrl-C again ends them)",
        flush=True,
    )
    manager = Manager(
        kill_wait=Settings.from_env(env).shutdown_grace_seconds + KILL_AFTER,
        # gunicorn's quick shutdown (its own Ctrl-C): its graceful one waits out a 1 s poll, and requests
        # are short while streams end at once anyway.
        stop_with={"web": signal.SIGINT},
        last=frozenset({"redis"}),  # so every job's end is written, and the AOF flushed, before Redis goes
        url_file=UrlFile(ROOT / RUN_URL_FILE, env["REDIS_URL"].strip()),
    )
    procfile = honcho.environ.parse_procfile((ROOT / "Procfile").read_text())
    os.chdir(ROOT)
    for process in honcho.environ.expand_processes({name: procfile.processes[name] for name in processes}):
        manager.add_process(process.name, process.cmd, quiet=process.quiet, env={**env, **process.env})
    try:
        manager.loop()
    finally:  # whatever ended the run: a stop signal, a process that ended, an error of this script
        manager.url_file.remove()
    # Everything it ran has ended: leave without tearing down the interpreter (the whole core is imported
    # for Settings), which is the last thing a Ctrl-C waits for; 0.5 s on a loaded 2-core machine.
    sys.stdout.flush()
    os._exit(manager.returncode if manager.returncode is not None else 1)


if __name__ == "__main__":
    main()
