"""`make run` (scripts/run.py under honcho) and the pool (worker.py): everything comes up, and a stop ends it
in order, leaving nothing; when no job runs, within seconds, every time, whatever the workers are doing."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobs import Jobs
from jobs.config import RUN_URL_FILE
from runner.stopping import INTERRUPTED
from runner.worker import DUPLICATE_SECONDS
from scripts.harness import ROOT, RedisServer, Service, free_port, request, wait_until
from tests.bounds import IDLE_STOP_SECONDS, JOB_SECONDS, START_SECONDS, STOP_SECONDS
from tests.helpers import create

TRIES = 10  # each idle stop is tried this often, going through the phases in turn
PHASES = ("start-up", "idle", "between jobs")  # of the workers when the stop comes
WORKERS = 5


class Run:
    """scripts/run.py as `make run` starts it, with the embedded Redis, on ports and a data dir of the test's own;
    in this checkout, or in another `root` (a fresh clone)."""

    def __init__(
        self, tmp_path: Path, redis_port: int, web_port: int, grace: int = 10, root: Path = ROOT, **extra: str
    ) -> None:
        env = {
            **os.environ,
            "JOBSTREAM_BIND": f"127.0.0.1:{web_port}",
            "JOBSTREAM_REDIS_PORT": str(redis_port),
            "JOBSTREAM_REDIS_DIR": str(tmp_path / "redis"),
            "JOBSTREAM_SHUTDOWN_GRACE_SECONDS": str(grace),
            **extra,
        }
        env.pop("REDIS_URL", None)
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        self.log = (tmp_path / "run.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "scripts/run.py"],
            cwd=root,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # as a terminal runs it: Ctrl-C goes to this process group
        )
        self.base = f"http://127.0.0.1:{web_port}"
        try:
            wait_until(self._healthy, START_SECONDS, "make run to serve /healthz")
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool:
        try:
            return request(self.base, "GET", "/healthz")[0] == 200
        except OSError:
            return False

    def workers(self) -> int:
        """How many workers have registered (each is then idle in its dequeue, or busy)."""
        return len(request(self.base, "GET", "/api/stats")[1]["workers"])

    def job(self, job_id: str) -> dict:
        return request(self.base, "GET", f"/api/jobs/{job_id}")[1]["job"]

    def processes(self) -> list[psutil.Process]:
        return tree(self.process.pid)

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


def tree(pid: int) -> list[psutil.Process]:
    """A process and everything it started."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                living.append(process)
        except psutil.NoSuchProcess:
            pass
    return living


def seconds_to_stop(processes: list[psutil.Process], send: Callable[[], None]) -> float:
    """Send a stop; how long until the last of `processes` has ended (a failure after STOP_SECONDS)."""
    signalled = time.monotonic()
    send()
    try:
        wait_until(lambda: not alive(processes), STOP_SECONDS, "every process to end")
    except AssertionError as exc:
        left = [(p.pid, " ".join(sorted(named(p)))) for p in alive(processes)]
        raise AssertionError(f"{exc}; still running: {left}") from None
    return time.monotonic() - signalled


def named(process: psutil.Process) -> set[str]:
    """What a process is, by its command line: redis-server, gunicorn, worker.py, ..."""
    try:
        return {Path(part).name for part in process.cmdline()} | {process.name()}
    except psutil.Error:
        return set()


def reach(phase: str, workers: Callable[[], int], redis_url: str) -> None:
    """Wait until the workers are in `phase`: starting (no wait), idle in their dequeue, or just done with a
    job each (one no-op job per worker, enqueued through the Python API, has ended)."""
    if phase == "start-up":
        return
    wait_until(lambda: workers() >= WORKERS, START_SECONDS, "every worker to register")
    if phase == "between jobs":
        jobs = Jobs.from_url(redis_url)
        try:
            created = [jobs.enqueue("demo.sleep", name=f"no-op {i}", params={"seconds": 0}) for i in range(WORKERS)]
            for job in created:
                jobs.wait(job.id, timeout=JOB_SECONDS)
        finally:
            jobs.redis.connection_pool.disconnect()


def assert_all_within_bound(took: list[tuple[str, float]]) -> None:
    slow = [(phase, round(seconds, 2)) for phase, seconds in took if seconds > IDLE_STOP_SECONDS]
    assert not slow, f"slower than {IDLE_STOP_SECONDS} s: {slow} of {[(p, round(s, 2)) for p, s in took]}"


def stop_idle_make_runs(tmp_path: Path, tries: int, send: Callable[[Run], None]) -> list[tuple[str, float]]:
    """Start `make run` `tries` times, going through the phases, and time `send` stopping it each time."""
    took = []
    for attempt in range(tries):  # one data dir for all: its AOF stays tiny, so each start loads it at once
        run = Run(tmp_path, free_port(), free_port())
        try:
            phase = PHASES[attempt % len(PHASES)]
            reach(phase, run.workers, run.redis_url)
            took.append((phase, seconds_to_stop(run.processes(), partial(send, run))))
            assert not (ROOT / RUN_URL_FILE).exists(), "make run left its Redis URL behind"
        finally:
            run.stop()
    return took


def test_ctrl_c_stops_an_idle_make_run_within_the_bound_every_time(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole foreground process group) ends all of `make run`, Redis included."""
    assert_all_within_bound(stop_idle_make_runs(tmp_path, TRIES, Run.ctrl_c))


def test_sigterm_to_run_py_alone_stops_an_idle_make_run_within_the_bound(tmp_path: Path) -> None:
    """SIGTERM to scripts/run.py only (a supervisor's stop, not a terminal's), once in each phase."""
    took = stop_idle_make_runs(tmp_path, len(PHASES), lambda run: run.process.send_signal(signal.SIGTERM))
    assert_all_within_bound(took)


def test_sigterm_to_worker_py_stops_an_idle_pool_within_the_bound_every_time(tmp_path: Path) -> None:
    """SIGTERM to the pool's process alone (a supervisor's stop) ends it and every worker."""
    server = RedisServer(tmp_path / "redis").start()
    client = server.client()
    took = []
    try:
        for attempt in range(TRIES):
            client.flushall()  # no registration left over from the last pool
            env = {"REDIS_URL": server.url, "JOBSTREAM_SHUTDOWN_GRACE_SECONDS": "10"}
            pool = Service(f"worker-{attempt}", [sys.executable, "worker.py"], env, tmp_path)
            try:
                phase = PHASES[attempt % len(PHASES)]
                reach(phase, lambda: len(client.smembers("rq:workers")), server.url)
                took.append((phase, seconds_to_stop(tree(pool.pid), partial(pool.signal, signal.SIGTERM))))
            finally:
                pool.stop()
    finally:
        client.close()
        server.stop()
    assert_all_within_bound(took)


def test_make_run_comes_up_ctrl_c_lets_a_running_job_finish_and_a_second_ends_the_others(tmp_path: Path) -> None:
    redis_port, web_port = free_port(), free_port()
    run = Run(tmp_path, redis_port, web_port, grace=60)
    try:
        wait_until(lambda: run.workers() >= WORKERS, START_SECONDS, "every worker to register")
        finishing = create(run.base, "finishing", steps=4, step_seconds=0.5)
        endless = create(run.base, "endless", steps=600, step_seconds=0.1)
        for job in (finishing, endless):
            wait_until(lambda j=job: run.job(j["id"])["progress"] > 0, JOB_SECONDS, f"{job['name']} running")
        started = run.processes()
        assert {"redis-server", "gunicorn", "worker.py"} <= {part for p in started for part in named(p)}
        pool = next(p for p in started if "worker.py" in named(p) and "worker.py" not in named(p.parent()))
        first = time.monotonic()
        run.ctrl_c()
        # The idle workers leave at once, the finishing job's once it has ended; the endless job runs on.
        wait_until(lambda: len(alive(pool.children())) == 1, JOB_SECONDS, "every worker but the endless one to end")
        time.sleep(max(0.0, first + DUPLICATE_SECONDS + 0.5 - time.monotonic()))  # a second Ctrl-C, not a copy
        # The endless job is interrupted now, not after its 60 s of grace, and everything is gone as fast.
        assert_all_within_bound([("a second Ctrl-C", seconds_to_stop(started, run.ctrl_c))])
    finally:
        run.stop()
    again = Run(tmp_path, redis_port, web_port)  # the same data dir: the AOF kept what happened
    try:
        assert again.job(finishing["id"])["status"] == "completed"
        assert (again.job(endless["id"])["status"], again.job(endless["id"])["error"]) == ("failed", INTERRUPTED)
    finally:
        again.stop()


# -- the terminal finds the Redis of `make run` -----------------------------------------------------------


def fresh_clone(tmp_path: Path) -> Path:
    """What a fresh clone of this checkout holds (its tracked files, as they are now: no var/, no venv), with
    the `jobstream` command that `make run` installs, made by the Makefile's own rule for this Python."""
    clone = tmp_path.resolve() / "clone"
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).is_file():  # not a file deleted since the last commit
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    (clone / ".venv" / "bin").mkdir(parents=True)
    subprocess.run(["make", "-s", f"PY={sys.executable}", ".venv/bin/jobstream"], cwd=clone, check=True)
    return clone


def terminal_env() -> dict[str, str]:
    """A new user's terminal: no REDIS_URL, no JOBSTREAM_* or PYTHON* setting of the test's own."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith(("JOBSTREAM_", "PYTHON"))}
    env["COLUMNS"] = "500"  # the whole path on one line
    return env


def test_a_fresh_clones_make_run_is_found_by_jobstream_and_jobs_from_env_from_anywhere(tmp_path: Path) -> None:
    """Without REDIS_URL, from another directory, the terminal reads the clone's `make run`'s Redis: not the
    default, and not a decoy Redis on another port. On exit, make run takes its URL away again; a URL
    left behind (a killed make run) is an error naming the file, never another Redis."""
    clone = fresh_clone(tmp_path)
    url_file = clone / RUN_URL_FILE
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = terminal_env()

    def jobstream(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(clone / ".venv" / "bin" / "jobstream"), *args]
        return subprocess.run(command, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)

    decoy = RedisServer(tmp_path / "decoy").start()
    try:
        decoy.client().set("decoy", "a Redis that nobody points at")
        run = Run(tmp_path, free_port(), free_port(), root=clone, JOBSTREAM_CONCURRENCY="1")
        try:
            url = wait_until(lambda: url_file.exists() and url_file.read_text().strip(), START_SECONDS, "the URL file")
            assert url == run.redis_url != decoy.url

            info = jobstream("--json", "info")
            assert info.returncode == 0, info.stderr
            assert json.loads(info.stdout)["redis"] == {"url": url, "source": str(url_file)}
            text = jobstream("info")
            assert ["redis", url, "(from", f"{url_file})"] in [line.split() for line in text.stdout.splitlines()]
            enqueued = jobstream("--json", "enqueue", "demo.sleep", "--name", "from the terminal", "--wait")
            assert enqueued.returncode == 0, enqueued.stderr
            assert run.job(json.loads(enqueued.stdout)["id"])["status"] == "completed"  # the page's Redis
            python = "from jobs import Jobs; print(Jobs.from_env().settings.redis_url)"
            found = subprocess.run(
                [sys.executable, "-c", python],
                cwd=elsewhere,
                env={**env, "PYTHONPATH": str(clone)},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert found.stdout.strip() == url, found.stderr
        finally:
            run.stop()
        assert run.process.returncode == 130 and not url_file.exists()
        assert decoy.client().keys() == [b"decoy"]

        url_file.write_text(f"{url}\n")  # as a killed make run leaves it
        stale = jobstream("info")
        assert stale.returncode == 2 and stale.stderr.startswith(f"jobstream: {url_file} names {url}"), stale
    finally:
        decoy.stop()


# -- the README's first job type in three steps ------------------------------------------------------------

FIRST_JOB = re.compile(r"<!-- first-job: (\S+) -->\n```\w+\n(.*?)```", re.DOTALL)  # a marked block of the README
ASSIGNMENT = re.compile(r"([A-Z_][A-Z0-9_]*)=(.*)")


def first_job_steps() -> dict[str, str]:
    """The code blocks of the README's "Your first job type in three steps", each by the name that marks it."""
    blocks = dict(FIRST_JOB.findall((ROOT / "README.md").read_text()))
    assert set(blocks) == {"myjobs.py", "run", "enqueue", "enqueue.py"}, f"the README's marked blocks: {set(blocks)}"
    return blocks


def shell_lines(block: str) -> list[tuple[dict[str, str], list[str]]]:
    """Each line of a sh block as (its NAME=value settings, the command's words, if any); `export` sets alone."""
    lines = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        words = words[1:] if words[:1] == ["export"] else words
        settings: dict[str, str] = {}
        while words and (found := ASSIGNMENT.fullmatch(words[0])):
            settings[found[1]] = found[2]
            words = words[1:]
        lines.append((settings, words))
    return lines


class FirstJobRun:
    """Steps 1 and 2 of the README in a fresh clone: its module written where it says, make run with its settings."""

    def __init__(self, tmp_path: Path, steps: dict[str, str]) -> None:
        self.clone = fresh_clone(tmp_path)
        (self.clone / "myjobs.py").write_text(steps["myjobs.py"])
        [(settings, command)] = shell_lines(steps["run"])
        assert command == ["make", "run"] and set(settings) == {"JOBSTREAM_JOB_MODULES"}, steps["run"]
        self.run = Run(
            tmp_path,
            free_port(),
            free_port(),
            root=self.clone,
            JOBSTREAM_CONCURRENCY="1",
            JOBSTREAM_JOB_MODULES=settings["JOBSTREAM_JOB_MODULES"],
        )


@pytest.fixture
def first_job_run(tmp_path: Path) -> Iterator[FirstJobRun]:
    """make run of a fresh clone, after the README's steps 1 and 2; stopped whatever the test does."""
    started = FirstJobRun(tmp_path, first_job_steps())
    try:
        yield started
    finally:
        started.run.stop()


def test_the_readmes_three_steps_give_a_typed_job_type_enqueued_from_the_terminal_and_from_python(
    tmp_path: Path, first_job_run: FirstJobRun
) -> None:
    """Step 3 as the README writes it, from another directory without REDIS_URL: the command and the Python
    snippet each enqueue the new type, wait, and see it completed with the result that the README says."""
    steps, clone, run = first_job_steps(), first_job_run.clone, first_job_run.run
    (clone / "enqueue.py").write_text(steps["enqueue.py"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = terminal_env()
    done = []
    for settings, words in shell_lines(steps["enqueue"]):
        env.update(settings)
        if not words:
            continue  # an export
        program, *args = words
        if program == ".venv/bin/jobstream":
            command = [str(clone / program), *args]
        else:
            assert program == ".venv/bin/python", f"the test knows no {program}"
            command = [sys.executable, *(str(clone / arg) for arg in args)]
        done.append(subprocess.run(command, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60))
    terminal, python = done
    assert terminal.returncode == 0, terminal.stdout + terminal.stderr
    job = run.job(terminal.stdout.split()[0])  # the command prints the job, its id first
    assert (job["type"], job["status"], job["result"]) == ("reports.export", "completed", {"rows": 1000})
    said = steps["enqueue.py"].strip().splitlines()[-1].split("# ", 1)[1]  # the README's comment on the print
    assert (python.returncode, python.stdout.strip()) == (0, said), python.stderr


def test_make_run_makes_a_metrics_folder_that_does_not_exist_yet_and_serves_metrics(tmp_path: Path) -> None:
    """PROMETHEUS_MULTIPROC_DIR naming a folder not made yet: every process comes up, and /metrics adds them up."""
    folder = tmp_path / "not" / "yet" / "metrics"
    run = Run(tmp_path, free_port(), free_port(), PROMETHEUS_MULTIPROC_DIR=str(folder))
    try:
        job = create(run.base, "metered", "demo.sleep", seconds=0)
        wait_until(lambda: run.job(job["id"])["status"] == "completed", JOB_SECONDS, "the job to complete")
        with urllib.request.urlopen(run.base + "/metrics", timeout=10) as response:
            assert response.status == 200
            text = response.read().decode()
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        created = ("jobstream_jobs_created_total", frozenset({("type", "demo.sleep")}))
        ended = ("jobstream_jobs_ended_total", frozenset({("type", "demo.sleep"), ("status", "completed")}))
        assert (samples[created], samples[ended]) == (1, 1)  # the web process's count and a worker's, from their files
        assert list(folder.glob("counter_*.db"))
    finally:
        run.stop()
