"""The `jobstream` command, as installed by the Makefile (.venv/bin/jobstream), through subprocesses against
the live stack: its output (text and --json), its exit codes, and `watch` following jobs through the stream."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import click
import pytest

from cli import commands
from cli.commands import parse_params
from jobs import CreateOptions, Jobs
from scripts.harness import ROOT, RedisServer, Service, free_port, request, wait_until
from tests.bounds import EVENT_SECONDS, JOB_SECONDS, START_SECONDS, STOP_SECONDS
from tests.conftest import Stack

COMMAND = ROOT / ".venv" / "bin" / "jobstream"
RUN_SECONDS = START_SECONDS  # a command that does not wait for a job: it starts, asks Redis and prints
SUBCOMMANDS = (
    "info enqueue list show cancel retry delete pause resume clean watch web worker schedule".split()  # every one
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # a terminal's control sequences, in the bars' output
QUICK = {"steps": 1, "step_seconds": 0}  # a demo.web_agent job that ends at once
SLOW = {"steps": 300, "step_seconds": 0.1}  # one that runs until the test cancels it


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Running:
    """A jobstream process that goes on (watch, web, worker), its output in files the test can read."""

    def __init__(self, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.out_path, self.err_path = workdir / "out", workdir / "err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.process = subprocess.Popen(args, env=env, stdout=out, stderr=err, start_new_session=True)

    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL, to its whole process group (a worker pool forks)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(STOP_SECONDS)


class Jobstream:
    """Runs the installed command against one Redis; every process it started is ended by its fixture."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.workdir = workdir
        self.running: list[Running] = []

    def env(self, extra: dict[str, str] | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSTREAM_", "TTY_", "FORCE_COLOR"))}
        return {**env, "REDIS_URL": self.url, "COLUMNS": "200", **(extra or {})}

    def __call__(self, *args: str, env: dict[str, str] | None = None, timeout: float = RUN_SECONDS) -> Result:
        done = subprocess.run([str(COMMAND), *args], env=self.env(env), capture_output=True, text=True, timeout=timeout)
        return Result(done.returncode, done.stdout, done.stderr)

    def start(self, *args: str, env: dict[str, str] | None = None) -> Running:
        workdir = self.workdir / f"run{len(self.running)}"
        workdir.mkdir()
        running = Running([str(COMMAND), *args], self.env(env), workdir)
        self.running.append(running)
        return running

    def run_all(self, commands: list[list[str]]) -> list[Result]:
        """Run several commands at once (each is a Python start-up) and return their results in order."""
        started = [self.start(*args) for args in commands]
        return [Result(running.wait(RUN_SECONDS), running.out(), running.err()) for running in started]

    def close(self) -> None:
        for running in self.running:
            running.stop()


@pytest.fixture(scope="session")
def installed() -> Path:
    """The command as `make run` and `make test` install it (a no-op when make already did)."""
    subprocess.run(["make", "-s", str(COMMAND.relative_to(ROOT))], cwd=ROOT, check=True, timeout=RUN_SECONDS)
    return COMMAND


@pytest.fixture
def jobstream(installed: Path, stack: Stack, tmp_path: Path) -> Iterator[Jobstream]:
    command = Jobstream(stack.redis_server.url, tmp_path)
    yield command
    command.close()


@pytest.fixture
def jobs(stack: Stack) -> Jobs:
    """The Python API on the stack, to set up and check what the command did."""
    return Jobs.from_url(stack.redis_server.url)


@pytest.fixture
def paused(jobs: Jobs) -> Iterator[None]:
    """The stack's queue paused for the test, and resumed after it, passed or failed."""
    jobs.pause()
    yield
    jobs.resume()


@pytest.fixture
def name(request: pytest.FixtureRequest, jobs: Jobs) -> Iterator[str]:
    """A job name no other test uses; the test's jobs that have not ended by its end are canceled."""
    unique = f"cli {request.node.name} {uuid.uuid4().hex[:8]}"
    yield unique
    jobs.cancel_many([job.id for job in jobs.list(q=unique, limit=200).jobs if not job.ended])


def enqueue(jobstream: Jobstream, job_type: str, name: str, *args: str) -> dict[str, Any]:
    result = jobstream("--json", "enqueue", job_type, "--name", name, *args)
    assert result.code == 0, result.err
    job: dict[str, Any] = result.json()
    return job


def web_agent(jobstream: Jobstream, name: str, params: dict[str, Any]) -> dict[str, Any]:
    return enqueue(jobstream, "demo.web_agent", name, "--params-json", json.dumps(params))


def ended(jobs: Jobs, job_id: str) -> str:
    job = jobs.get(job_id)
    return job.status if job.ended else ""


def active(jobs: Jobs, job_id: str) -> bool:
    return jobs.get(job_id).status == "active"


# -- help and usage ---------------------------------------------------------------------------------------


def test_help_of_every_subcommand_says_what_it_does_with_examples(jobstream: Jobstream) -> None:
    top = jobstream("--help")
    assert top.code == 0
    for sub in SUBCOMMANDS:
        assert f"\n  {sub} " in top.out, f"`jobstream --help` does not list {sub}"
    for sub, result in zip(SUBCOMMANDS, jobstream.run_all([[sub, "--help"] for sub in SUBCOMMANDS]), strict=True):
        assert result.code == 0, f"{sub}: {result.err}"
        out = result.out
        assert out.startswith(f"Usage: jobstream {sub} "), out
        assert "Example" in out and f"jobstream {sub}" in out.split("Example", 1)[1], out


BAD_USAGE = [  # what is wrong, and what the one line on stderr says
    (["enqueue", "--name", "x"], "Missing argument 'TYPE'"),
    (["enqueue", "demo.sleep"], "Missing option '--name'"),
    (["enqueue", "demo.sleep", "--name", "x", "--param", "seconds"], "is not KEY=VALUE"),
    (["enqueue", "demo.sleep", "--name", "x", "--params-json", "[1]"], "must be a JSON object"),
    (["enqueue", "demo.sleep", "--name", "x", "--priority", "urgent"], "'urgent' is not one of"),
    (["enqueue", "demo.sleep", "--name", "x", "--timeout", "5"], "--timeout needs --wait"),
    (["list", "--status", "done"], "'done' is not one of"),
    (["clean", "--status", "active"], "'active' is not one of"),
    (["cancel"], "Missing argument 'ID...'"),
    (["frobnicate"], "No such command 'frobnicate'"),
]


def test_bad_usage_exits_2(jobstream: Jobstream) -> None:
    for (args, says), result in zip(BAD_USAGE, jobstream.run_all([args for args, _ in BAD_USAGE]), strict=True):
        assert result.code == 2, (args, result)
        assert says in result.err, (args, result)


# -- info -------------------------------------------------------------------------------------------------


def test_info_shows_counts_queues_workers_and_what_they_run(jobstream: Jobstream, jobs: Jobs, name: str) -> None:
    job = web_agent(jobstream, name, SLOW)
    wait_until(lambda: active(jobs, job["id"]), JOB_SECONDS, "the job to start")

    text = jobstream("info")
    assert text.code == 0, text.err
    for label in ("jobs", "queued", "paused", "workers", "pending", "completed", "high", "normal", "low"):
        assert label in text.out
    runs = next(line for line in text.out.splitlines() if job["id"] in line)
    assert "busy" in runs and name in runs  # the worker, and the name of the job it runs
    assert ["redis", jobstream.url, "(from", "REDIS_URL)"] in [line.split() for line in text.out.splitlines()]

    stats = jobstream("--json", "info").json()
    assert set(stats["queues"]) == {"high", "normal", "low"}
    assert stats["paused"] is False and stats["counts"]["active"] >= 1
    assert stats["workers"] and all(set(worker) >= {"name", "state", "current_job"} for worker in stats["workers"])
    assert job["id"] in {worker["current_job"] for worker in stats["workers"]}
    assert stats["redis"] == {"url": jobstream.url, "source": "REDIS_URL"}  # which Redis, and why that one


def test_info_watch_refreshes_until_interrupted(jobstream: Jobstream) -> None:
    watching = jobstream.start("--json", "info", "--watch")
    wait_until(lambda: watching.out().count("\n") >= 2, EVENT_SECONDS, "two refreshes")
    assert all(set(json.loads(line)) >= {"counts", "queues", "workers"} for line in watching.out().splitlines())
    watching.process.send_signal(signal.SIGINT)
    assert watching.wait(STOP_SECONDS) == 0


# -- enqueue ----------------------------------------------------------------------------------------------


def test_enqueue_wait_exits_0_when_the_job_completes(jobstream: Jobstream, name: str) -> None:
    result = jobstream("enqueue", "demo.sleep", "--name", name, "--param", "seconds=0.2", "--wait", timeout=JOB_SECONDS)
    assert result.code == 0, result.err
    assert "pending" in result.out.splitlines()[0]  # the id first, at once
    assert "completed" in result.out and '"slept": 0.2' in result.out

    as_json = jobstream("--json", "enqueue", "demo.sleep", "--name", name, "--wait", "--timeout", "60")
    assert as_json.code == 0
    job = as_json.json()
    assert job["status"] == "completed" and job["result"] == {"slept": 1.0} and job["name"] == name


def test_enqueue_wait_exits_1_when_the_job_fails(jobstream: Jobstream, name: str) -> None:
    params = ["--param", "steps=1", "--param", "fail_rate=1", "--param", "step_seconds=0"]
    result = jobstream("enqueue", "demo.web_agent", "--name", name, *params, "--wait", timeout=JOB_SECONDS)
    assert result.code == 1, result.err
    assert "failed" in result.out and "step 1/1 failed" in result.out

    job = jobstream("--json", "enqueue", "demo.web_agent", "--name", name, *params, "--wait").json()
    assert job["status"] == "failed" and job["error"]


def test_enqueue_has_a_flag_for_each_create_option() -> None:
    flags = {param.name for param in commands.enqueue.params}

    assert {option.name for option in fields(CreateOptions)} <= flags


def test_enqueue_passes_every_create_option(jobstream: Jobstream, name: str) -> None:
    retries = ["--max-attempts", "2", "--backoff", '{"type": "fixed", "delay_seconds": 0}', "--timeout-seconds", "30"]
    args = ["--json", "enqueue", "demo.flaky", "--name", name, "--param", "fail_times=1", *retries, "--priority", "low"]

    result = jobstream(*args, "--wait", timeout=JOB_SECONDS)

    assert result.code == 0, result.err
    job = result.json()
    assert (job["status"], job["attempts"], job["max_attempts"], job["priority"]) == ("completed", 2, 2, "low")


def test_enqueue_depends_on_waits_for_its_parents_and_show_names_them(jobstream: Jobstream, name: str) -> None:
    parent = jobstream("--json", "enqueue", "demo.sleep", "--name", name, "--delay", "600").json()
    args = ["--json", "enqueue", "demo.noop", "--name", f"{name} child", "--depends-on", parent["id"]]

    child = jobstream(*args, "--allow-failure").json()

    assert (child["status"], child["waiting_for"], child["allow_failure"]) == ("pending", [parent["id"]], True)
    shown = jobstream("show", parent["id"])
    assert f"dependents  {child['id']}" in shown.out
    jobstream("cancel", parent["id"])


def test_enqueue_wait_gives_up_at_its_timeout_with_1(jobstream: Jobstream, jobs: Jobs, name: str) -> None:
    result = jobstream("enqueue", "demo.sleep", "--name", name, "--param", "seconds=60", "--wait", "--timeout", "0.5")
    assert result.code == 1
    assert "after 0.5 s" in result.err


@pytest.mark.parametrize(
    "pair, value",
    [
        ("n=3", 3),
        ("x=1.5", 1.5),
        ("b=true", True),
        ("v=null", None),
        ("l=[1, 2]", [1, 2]),
        ('o={"a": 1}', {"a": 1}),
        ('s="3"', "3"),  # quoted: a string, however it looks
        ("s=hello world", "hello world"),  # not JSON: a string
        ("s=", ""),
        ("u=a=b", "a=b"),  # the first = splits
    ],
)
def test_param_values_are_json_when_they_parse_else_strings(pair: str, value: Any) -> None:
    key = pair.split("=", 1)[0]
    assert parse_params(click.Context(click.Command("x")), click.Option(["--param"]), (pair,)) == {key: value}


def test_params_reach_the_job_typed_and_param_overrides_params_json(jobstream: Jobstream, name: str) -> None:
    job = enqueue(
        jobstream,
        "demo.web_agent",
        name,
        "--params-json",
        '{"steps": 2, "step_seconds": 0.5}',
        "--param",
        "step_seconds=0",
        "--param",
        "fail_rate=0",
        "--priority",
        "high",
    )
    assert job["params"] == {"steps": 2, "step_seconds": 0, "fail_rate": 0}
    assert isinstance(job["params"]["steps"], int) and job["priority"] == "high"


def test_delay_holds_a_job_and_max_attempts_retries_it(jobstream: Jobstream, name: str) -> None:
    later = jobstream("enqueue", "demo.sleep", "--name", name, "--delay", "3600")
    assert later.code == 0 and "pending" in later.out and " starts " in later.out  # and when, in UTC
    job = jobstream("--json", "show", later.out.split()[0]).json()
    assert job["status"] == "pending" and job["scheduled_for"]

    flaky = ["--param", "fail_times=1", "--max-attempts", "2", "--wait"]
    done = jobstream("--json", "enqueue", "demo.flaky", "--name", name, *flaky, timeout=JOB_SECONDS)
    assert done.code == 0, done.err
    assert (done.json()["status"], done.json()["attempts"], done.json()["max_attempts"]) == ("completed", 2, 2)


def test_idempotency_key_returns_the_first_job(jobstream: Jobstream, name: str) -> None:
    key = f"cli-{uuid.uuid4().hex}"
    first = enqueue(jobstream, "demo.sleep", name, "--param", "seconds=0", "--idempotency-key", key)
    again = enqueue(jobstream, "demo.sleep", name, "--param", "seconds=0", "--idempotency-key", key)
    assert again["id"] == first["id"]
    other = jobstream("enqueue", "demo.sleep", "--name", name, "--param", "seconds=1", "--idempotency-key", key)
    assert other.code == 2 and "idempotency_conflict" in other.err


@pytest.mark.parametrize(
    "args, fields",
    [
        (["--param", "steps=0", "--param", "bogus=1"], ["params.steps", "params.bogus"]),
        (["--param", "steps=abc"], ["params.steps: Not a valid integer"]),
        (["--name", ""], ["name"]),
        (["--delay", "-1"], ["delay_seconds: Must be greater than or equal to 0"]),
        (["--run-at", "tomorrow"], ["run_at: Not a valid datetime"]),
    ],
)
def test_bad_params_exit_2_naming_the_field(jobstream: Jobstream, args: list[str], fields: list[str]) -> None:
    result = jobstream("enqueue", "demo.web_agent", "--name", "bad params", *args)
    assert result.code == 2, result
    assert result.err.startswith("jobstream: validation_error: ") and result.err.count("\n") == 1  # one line
    for field in fields:
        assert field in result.err
    assert result.out == ""


def test_an_unknown_type_exits_2_naming_it(jobstream: Jobstream) -> None:
    result = jobstream("enqueue", "no.such.type", "--name", "x")
    assert result.code == 2 and "type: unknown job type 'no.such.type'" in result.err


# -- reading ----------------------------------------------------------------------------------------------


def test_list_shows_the_matching_jobs_newest_first(jobstream: Jobstream, jobs: Jobs, name: str) -> None:
    hostile = f"[red]{name}[/red] <b>"  # rich markup and HTML in a name print as they are
    first = web_agent(jobstream, hostile, QUICK)
    second = web_agent(jobstream, hostile, QUICK)
    wait_until(lambda: ended(jobs, first["id"]) and ended(jobs, second["id"]), JOB_SECONDS, "both jobs to end")

    text = jobstream("list", "--q", name)
    assert text.code == 0, text.err
    rows = [line for line in text.out.splitlines() if name in line]
    assert len(rows) == 2 and second["id"] in rows[0] and first["id"] in rows[1]
    assert all(hostile in row and "completed" in row and "100%" in row for row in rows)
    assert "pending" in text.out.splitlines()[-1]  # the counts by status

    page = jobstream("list", "--q", name, "--json", "--status", "completed").json()  # --json after it too
    assert [job["id"] for job in page["jobs"]] == [second["id"], first["id"]]
    assert set(page) == {"jobs", "next_cursor", "counts", "last_event_id"}
    one = jobstream("--json", "list", "--q", name, "--limit", "1").json()
    assert len(one["jobs"]) == 1 and one["next_cursor"]
    rest = jobstream("--json", "list", "--q", name, "--cursor", one["next_cursor"]).json()
    assert [job["id"] for job in rest["jobs"]] == [first["id"]]


def test_show_prints_every_field_and_the_log(jobstream: Jobstream, jobs: Jobs, name: str) -> None:
    job = web_agent(jobstream, f"[bold]{name}", {"steps": 2, "step_seconds": 0})
    wait_until(lambda: ended(jobs, job["id"]), JOB_SECONDS, "the job to end")

    text = jobstream("show", job["id"])
    assert text.code == 0, text.err
    for field in ("id", "name", "type", "status", "priority", "progress", "params", "attempts", "worker", "result"):
        assert any(line.startswith(field) for line in text.out.splitlines()), field
    assert f"[bold]{name}" in text.out and "completed" in text.out
    assert "step 1/2" in text.out and "step 2/2" in text.out  # the log lines

    detail = jobstream("--json", "show", job["id"]).json()
    assert detail["id"] == job["id"] and detail["status"] == "completed"
    assert any("step 2/2" in line for line in detail["logs"]) and detail["last_event_id"]


def test_show_of_an_unknown_id_exits_2(jobstream: Jobstream) -> None:
    result = jobstream("show", "ffffffffffffffff")
    assert result.code == 2 and result.err == "jobstream: not_found: no job ffffffffffffffff\n"


# -- changing ---------------------------------------------------------------------------------------------


def test_cancel_stops_an_active_job_and_reports_each_id(jobstream: Jobstream, jobs: Jobs, name: str) -> None:
    running = web_agent(jobstream, name, SLOW)
    done = web_agent(jobstream, name, QUICK)
    wait_until(lambda: active(jobs, running["id"]) and ended(jobs, done["id"]), JOB_SECONDS, "one running, one done")

    result = jobstream("cancel", running["id"], done["id"], "ffffffffffffffff")
    assert result.code == 2  # not every one could be canceled
    lines = result.out.splitlines()
    assert lines == [
        f"{running['id']}  cancel requested",
        f"{done['id']}  conflict (completed)",
        "ffffffffffffffff  not found",
    ]
    wait_until(lambda: ended(jobs, running["id"]) == "canceled", EVENT_SECONDS, "the job to stop")

    again = jobstream("--json", "cancel", running["id"])
    assert again.code == 2
    assert [(r["id"], r["outcome"], r["status"]) for r in again.json()] == [(running["id"], "conflict", "canceled")]


def test_cancel_of_a_pending_job_is_at_once(jobstream: Jobstream, name: str, paused: None) -> None:
    job = enqueue(jobstream, "demo.sleep", name)
    result = jobstream("--json", "cancel", job["id"])
    assert result.code == 0
    [outcome] = result.json()
    assert outcome["outcome"] == "canceled" and outcome["job"]["status"] == "canceled"


def test_retry_runs_a_failed_job_again(jobstream: Jobstream, jobs: Jobs, name: str) -> None:
    job = web_agent(jobstream, name, {"steps": 1, "step_seconds": 0, "fail_rate": 1})
    wait_until(lambda: ended(jobs, job["id"]) == "failed", JOB_SECONDS, "the job to fail")

    retried = jobstream("--json", "retry", job["id"])
    assert retried.code == 0, retried.err
    assert retried.json()["id"] == job["id"] and retried.json()["attempts"] == 2
    wait_until(lambda: ended(jobs, job["id"]) == "failed", JOB_SECONDS, "the second attempt to fail")

    text = jobstream("retry", job["id"])
    assert text.code == 0 and text.out.startswith(f"{job['id']}  pending")

    done = web_agent(jobstream, name, QUICK)
    wait_until(lambda: ended(jobs, done["id"]), JOB_SECONDS, "the job to end")
    refused = jobstream("retry", done["id"])
    assert refused.code == 2 and "conflict: cannot retry a job that is completed (status: completed)" in refused.err


def test_delete_removes_an_ended_job_and_refuses_an_active_one(jobstream: Jobstream, jobs: Jobs, name: str) -> None:
    done = web_agent(jobstream, name, QUICK)
    running = web_agent(jobstream, name, SLOW)
    wait_until(lambda: ended(jobs, done["id"]) and active(jobs, running["id"]), JOB_SECONDS, "one done, one running")

    assert jobstream("delete", done["id"]).out == f"deleted {done['id']}\n"
    assert jobstream("show", done["id"]).code == 2
    assert jobstream("--json", "delete", done["id"]).code == 2  # gone

    refused = jobstream("delete", running["id"])
    assert refused.code == 2 and "status: active" in refused.err


def test_pause_holds_pending_jobs_until_resume(jobstream: Jobstream, jobs: Jobs, name: str) -> None:
    try:
        assert jobstream("pause").code == 0
        assert jobstream("--json", "info").json()["paused"] is True
        assert ["paused", "yes"] in [line.split() for line in jobstream("info").out.splitlines()]
        job = enqueue(jobstream, "demo.sleep", name, "--param", "seconds=0")
        assert jobs.get(job["id"]).status == "pending"
    finally:
        resumed = jobstream("--json", "resume")
    assert resumed.code == 0 and resumed.json() == {"paused": False}
    assert jobstream("--json", "info").json()["paused"] is False
    wait_until(lambda: ended(jobs, job["id"]) == "completed", JOB_SECONDS, "the held job to run")


def test_clean_deletes_ended_jobs(jobstream: Jobstream, jobs: Jobs, name: str) -> None:
    job = web_agent(jobstream, name, {"steps": 1, "step_seconds": 0, "fail_rate": 1})
    wait_until(lambda: ended(jobs, job["id"]) == "failed", JOB_SECONDS, "the job to fail")

    kept = jobstream("--json", "clean", "--status", "failed", "--older-than", "3600").json()
    assert job["id"] not in kept["ids"]  # it ended just now
    cleaned = jobstream("--json", "clean", "--status", "failed").json()  # other tests' failed jobs go too
    assert job["id"] in cleaned["ids"] and cleaned["deleted"] == len(cleaned["ids"])
    assert jobstream("show", job["id"]).code == 2
    text = jobstream("clean", "--status", "canceled", "--older-than", "86400")
    assert text.code == 0 and text.out == "deleted 0 ended jobs\n"


# -- watch ------------------------------------------------------------------------------------------------


def subscribed(stack: Stack, before: int) -> bool:
    """A new stream subscription is in Redis (the watch's `events()` listens)."""
    return stack.redis_server.pattern_subscribers() > before


@pytest.mark.parametrize("terminal", [False, True], ids=["lines", "bars"])
def test_watch_job_shows_it_reach_100_percent_and_exits_by_itself(
    jobstream: Jobstream, jobs: Jobs, stack: Stack, name: str, paused: None, terminal: bool
) -> None:
    job = web_agent(jobstream, name, {"steps": 4, "step_seconds": 0.3})  # held pending by the pause
    before = stack.redis_server.pattern_subscribers()
    env = {"TTY_COMPATIBLE": "1", "TERM": "xterm-256color"} if terminal else {}  # rich draws bars as in a terminal
    watching = jobstream.start("watch", "--job", job["id"], env=env)
    wait_until(lambda: subscribed(stack, before), START_SECONDS, "watch to follow the stream")
    jobs.resume()

    assert watching.wait(JOB_SECONDS) == 0, watching.err()
    out = ANSI.sub("", watching.out()).replace("\r", "\n")
    if terminal:
        assert "━" in out and any(f"{percent}% " in out for percent in (" 25", " 50", " 75"))  # a bar, filling
    else:
        assert [line.split()[1:3] for line in out.splitlines()] == [
            ["pending", "0%"],
            ["active", "0%"],
            ["active", "25%"],
            ["active", "50%"],
            ["active", "75%"],
            ["active", "100%"],
            ["completed", "100%"],
        ]
    assert f"{job['id']}  completed  100%  {name}" in out.splitlines()


def test_watch_job_exits_1_when_the_job_fails_and_at_once_when_it_had_ended(
    jobstream: Jobstream, jobs: Jobs, name: str
) -> None:
    job = web_agent(jobstream, name, {"steps": 1, "step_seconds": 0, "fail_rate": 1})
    watched = jobstream("watch", "--job", job["id"], timeout=JOB_SECONDS)
    assert watched.code == 1
    assert any(job["id"] in line and "failed" in line for line in watched.out.splitlines()), watched.out
    assert jobstream("--json", "watch", "--job", job["id"]).code == 1  # ended before: at once
    assert jobstream("watch", "--job", "ffffffffffffffff").code == 2


def test_watch_follows_every_job_until_interrupted(jobstream: Jobstream, stack: Stack, name: str) -> None:
    before = stack.redis_server.pattern_subscribers()
    watching = jobstream.start("watch")
    as_json = jobstream.start("--json", "watch")
    wait_until(lambda: stack.redis_server.pattern_subscribers() >= before + 2, START_SECONDS, "both to subscribe")

    job = web_agent(jobstream, name, {"steps": 2, "step_seconds": 0.1})
    done = f"{job['id']}  completed  100%"
    wait_until(lambda: done in watching.out(), JOB_SECONDS, "watch to show the job complete")
    assert f"{job['id']}  active   50%" in watching.out()
    wait_until(lambda: '"status":"completed"' in as_json.out(), EVENT_SECONDS, "the JSON of the end")
    events = [json.loads(line) for line in as_json.out().splitlines()]
    mine = [event for event in events if event["job_id"] == job["id"]]
    assert [event["job"]["progress"] for event in mine if event["job"]["status"] == "active"] == [0, 50, 100]
    keys = {"id", "type", "job_id", "job", "log", "counts", "timestamp", "schedule_id", "schedule", "skipped"}
    assert all(set(event) == keys and event["schedule"] is None for event in mine)

    for process in (watching, as_json):
        process.process.send_signal(signal.SIGINT)
        assert process.wait(STOP_SECONDS) == 0
    assert "Traceback" not in watching.err()


def test_watch_waits_out_a_redis_restart_and_misses_nothing(
    installed: Path, private_redis: RedisServer, tmp_path: Path
) -> None:
    jobstream = Jobstream(private_redis.url, tmp_path)
    jobs = Jobs.from_url(private_redis.url)
    try:
        watching = jobstream.start("--json", "watch")
        wait_until(lambda: private_redis.pattern_subscribers() == 1, START_SECONDS, "watch to subscribe")
        before = jobs.enqueue("demo.sleep", name="before the restart")  # no worker: it stays pending
        wait_until(lambda: before.id in watching.out(), JOB_SECONDS, "the event before the restart")

        private_redis.stop()
        private_redis.start()  # its append-only file keeps the jobs and the events' replay stream
        after = jobs.enqueue("demo.sleep", name="after the restart")  # maybe before the watch is back
        jobs.cancel(after.id)
        wait_until(lambda: '"status":"canceled"' in watching.out(), START_SECONDS, "the events after it")
        assert watching.process.poll() is None
        # (a `reset` may come first: events(after=None) on a Redis that never had an event yields one)
        seen = [event for line in watching.out().splitlines() if (event := json.loads(line))["type"] != "reset"]
        assert [(e["job_id"], e["job"]["status"]) for e in seen] == [
            (before.id, "pending"),
            (after.id, "pending"),
            (after.id, "canceled"),
        ]  # every event once, in order
    finally:
        jobstream.close()


# -- Redis down -------------------------------------------------------------------------------------------


REDIS_NEEDED = [
    ["info"],
    ["list"],
    ["enqueue", "demo.sleep", "--name", "x", "--wait"],
    ["watch"],
    ["watch", "--job", "x"],
]


def test_redis_down_exits_3_naming_the_url(jobstream: Jobstream) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    for args, result in zip(
        REDIS_NEEDED, jobstream.run_all([["--url", url, *args] for args in REDIS_NEEDED]), strict=True
    ):
        assert result.code == 3, (args, result)
        assert result.err.startswith(f"jobstream: Redis at {url} does not answer ("), (args, result)


def test_redis_down_from_redis_url_masks_its_password(jobstream: Jobstream) -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    result = jobstream("info", env={"REDIS_URL": url})
    assert result.code == 3 and "s3cret" not in result.err and "redis://:***@127.0.0.1:" in result.err


# -- the processes ----------------------------------------------------------------------------------------


def test_worker_and_web_start_as_make_run_does(installed: Path, private_redis: RedisServer, tmp_path: Path) -> None:
    env = {"REDIS_URL": private_redis.url, "JOBSTREAM_SHUTDOWN_GRACE_SECONDS": "2"}
    port = free_port()
    started = []
    try:
        started.append(Service("worker", [str(installed), "worker", "--concurrency", "2"], env, tmp_path))
        wait_until(lambda: len(private_redis.client().smembers("rq:workers")) == 2, START_SECONDS, "2 workers")
        started.append(Service("web", [str(installed), "web", "--bind", f"127.0.0.1:{port}"], env, tmp_path))
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(base), START_SECONDS, "the web to answer")
        status, body, _ = request(base, "POST", "/api/jobs", {"name": "via web", "type": "demo.sleep"})
        assert status == 201
        job = Jobs.from_url(private_redis.url).wait(body["job"]["id"], JOB_SECONDS)
        assert job.status == "completed" and job.worker
        for service in reversed(started):
            assert service.stop() == 0, service.output()
    finally:
        for service in started:
            service.stop()


def _healthy(base: str) -> bool:
    try:
        return request(base, "GET", "/healthz")[0] == 200
    except OSError:
        return False


def test_failures_lists_the_groups_and_retries_one(jobstream: Jobstream, jobs: Jobs, name: str) -> None:
    message = f"RuntimeError: {name} broke"
    failed = [jobs.enqueue("demo.fail", name=name, params={"message": f"{name} broke"}) for _ in range(2)]
    for job in failed:
        assert jobs.wait(job.id, timeout=JOB_SECONDS).status == "failed"
    listed = jobstream("--json", "failures")
    assert listed.code == 0, listed.err
    group = next(g for g in listed.json()["groups"] if g["example"] == message)
    assert group["count"] == 2 and sorted(group["sample_ids"]) == sorted(job.id for job in failed)
    table = jobstream("failures")
    assert table.code == 0 and group["key"] in table.out
    retried = jobstream("--json", "failures", "--retry", group["key"])
    assert retried.code == 0 and retried.json()["count"] == 2
    for job in failed:
        assert jobs.wait(job.id, timeout=JOB_SECONDS).status == "failed"  # it runs again, and fails again
    assert jobstream("failures", "--delete", "0000000000000000").code == 2  # no such group


def test_schedule_set_list_pause_run_resume_rm(jobstream: Jobstream, jobs: Jobs, name: str) -> None:
    schedule_id = f"cli-{uuid.uuid4().hex[:8]}"
    made = jobstream(
        "--json", "schedule", "set", schedule_id, "demo.sleep", "--cron", "0 3 * * *", "--tz", "Europe/Berlin",
        "--param", "seconds=0", "--name", name,
    )  # fmt: skip
    try:
        assert made.code == 0, made.err
        assert made.json()["params"] == {"seconds": 0} and made.json()["timezone"] == "Europe/Berlin"
        listed = jobstream("schedule", "list")
        assert listed.code == 0 and schedule_id in listed.out and "0 3 * * * (Europe/Berlin)" in listed.out
        assert jobstream("--json", "schedule", "pause", schedule_id).json()["paused"] is True
        ran = jobstream("--json", "schedule", "run", schedule_id)
        assert ran.code == 0 and ran.json()["schedule_id"] == schedule_id and ran.json()["schedule_tick"] is None
        assert jobstream("--json", "schedule", "resume", schedule_id).json()["next_run_at"].endswith(":00:00.000Z")
        bad = jobstream("schedule", "set", schedule_id, "demo.sleep", "--every", "0")
        assert bad.code == 2 and "every_seconds" in bad.err
    finally:
        assert jobstream("schedule", "rm", schedule_id).code == 0
    assert jobstream("schedule", "rm", schedule_id).code == 2
    assert all(each.id != schedule_id for each in jobs.schedules())
