"""schemathesis against the live server: every check, every phase (stateful included), 0 failures.

The OpenAPI document must be true to the server (SPEC: "a fuzzer finds no difference"): no 5xx, every answer
documented with its status, media type, headers and schema, schema-valid requests accepted and schema-invalid
ones refused. A real gunicorn on a private Redis, with basic auth on (so `ignored_auth` is checked too) and no
worker pool: created jobs stay pending or get canceled, retried and deleted by the stateful phase, and no
fuzzed job (demo.primes up to 200 million) takes the machine's two cores from the rest of the suite.

Run by hand with more examples or another seed: SCHEMATHESIS_MAX_EXAMPLES=200 SCHEMATHESIS_SEED=7 pytest ...
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.harness import ROOT, RedisServer, start_web

USER = "fuzz:not-a-secret"
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "15"))  # per operation and phase: ~50 s in all
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261202")  # fixed, so a failure in CI is one you can replay
RUN_SECONDS = 600
# The stream never ends by itself: schemathesis reads each for its request timeout, so a short one, and few.
CONFIG = """\
[[operations]]
include-path = "/api/jobs/stream"
request-timeout = 1.0
generation.max-examples = 5
"""


@pytest.fixture
def fuzzed_base(tmp_path: Path) -> Iterator[str]:
    redis_server = RedisServer(tmp_path / "redis").start()
    try:
        web, base = start_web(
            redis_server.url, tmp_path / "logs", name="web-fuzzed", JOBSTREAM_AUTH=USER, JOBSTREAM_HEARTBEAT_SECONDS="1"
        )
        try:
            yield base
        finally:
            web.stop()
    finally:
        redis_server.stop()


def test_schemathesis_finds_no_difference_between_the_document_and_the_server(fuzzed_base: str, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color", "run"),
        f"{fuzzed_base}/api/openapi.json",
        *("--checks", "all", "--phases", "examples,coverage,fuzzing,stateful"),
        *("--max-examples", str(MAX_EXAMPLES), "--seed", SEED, "--auth", USER),
        *("--workers", "1"),  # threads would parse lambdas' source at once: CPython 3.11's ast is not thread-safe
        *("--generation-database", "none"),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_SECONDS)
    output = done.stdout + done.stderr
    (tmp_path / "schemathesis.txt").write_text(output)

    assert done.returncode == 0, output
    cases = re.search(r"(\d+) generated, (\d+) passed", output)
    assert cases is not None, output
    assert cases.group(1) == cases.group(2), output
    assert int(cases.group(1)) >= 300, output  # it did test, and a lot
    assert re.search(r"Stateful .*\n\s*\n?\s*Scenarios:\s+[1-9]", output), output
    print(f"schemathesis: {cases.group(1)} cases, 0 failures (seed {SEED})")
