"""A workflow on the dashboard, in real headless Chromium against the real stack: "waiting for N jobs" in the list,
the detail's dependencies and dependents as links with their live status, and the graph of the batch (parents
above, children below, an edge per dependency) recoloured as the stream tells."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from scripts.harness import request
from tests.conftest import Stack
from tests.dashboard_helpers import (
    JOB_TIMEOUT_MS,
    api_job,
    cancel_quietly,
    open_dashboard,
    row_by_id,
    row_by_name,
    unique,
)

pytest_plugins = ["tests.dashboard_fixtures"]  # the browser, page and new_page fixtures
pytestmark = pytest.mark.browser


@pytest.fixture
def base(stack: Stack) -> str:
    return stack.bases["request"]


@pytest.fixture
def diamond(base: str) -> Iterator[dict[str, Any]]:
    """A root that runs until canceled, two branches waiting for it and a join waiting for both, by key."""
    name = unique("flow")
    items = [
        {"type": "demo.sleep", "name": f"{name} root", "key": "root", "params": {"seconds": 120}},
        {"type": "demo.noop", "name": f"{name} left", "key": "left", "depends_on": ["root"]},
        {"type": "demo.noop", "name": f"{name} right", "key": "right", "depends_on": ["root"]},
        {"type": "demo.noop", "name": f"{name} join", "key": "join", "depends_on": ["left", "right"]},
    ]
    status, data, _ = request(base, "POST", "/api/jobs/batch", {"jobs": items})
    assert status == 201, data
    jobs = dict(zip(("root", "left", "right", "join"), data["jobs"], strict=True))
    yield jobs
    cancel_quietly(base, jobs["root"]["id"])


def test_the_list_says_what_a_job_waits_for_and_the_detail_draws_the_graph_live(
    page: Page, base: str, diamond: dict[str, Any]
) -> None:
    root, left, right, join = (diamond[k]["id"] for k in ("root", "left", "right", "join"))
    open_dashboard(page, base)
    expect(row_by_id(page, join).locator(".what")).to_have_text("waiting for 2 jobs")
    expect(row_by_id(page, left).locator(".what")).to_have_text("waiting for 1 job")

    row_by_id(page, join).locator(".name").click()
    workflow = page.locator("#detail-workflow")
    expect(workflow).to_be_visible()
    depends = page.locator("#detail-depends a.job-link")
    expect(depends).to_have_count(2)
    expect(depends.nth(0)).to_have_attribute("href", f"/jobs/{left}")
    expect(page.locator("#detail-dependents")).to_be_hidden()
    layers = page.locator("#detail-graph .graph-layer")
    expect(layers).to_have_count(3)  # the root above, the branches, the join below
    expect(layers.nth(0).locator(".graph-node")).to_have_attribute("data-id", root)
    expect(layers.nth(1).locator(".graph-node")).to_have_count(2)
    expect(layers.nth(2).locator(".graph-node")).to_have_attribute("aria-current", "page")
    expect(page.locator("#detail-edges line")).to_have_count(4)
    expect(layers.nth(0).locator(".graph-node")).to_have_attribute("data-status", "active", timeout=JOB_TIMEOUT_MS)

    assert request(base, "POST", f"/api/jobs/{root}/cancel")[0] == 202  # stopped by its worker: the rest follows

    for job_id in (root, left, right, join):
        node = page.locator(f'#detail-graph .graph-node[data-id="{job_id}"]')
        expect(node).to_have_attribute("data-status", "canceled", timeout=JOB_TIMEOUT_MS)
    expect(depends.nth(1).locator(".badge")).to_have_text("canceled")
    expect(page.locator("#detail-status")).to_have_text("canceled")
    expect(page.locator("#detail-error")).to_have_text(f"dependency {left} canceled")

    depends.nth(1).click()  # to a branch: its own dependency above, its dependent below
    expect(page).to_have_url(f"{base}/jobs/{right}")
    expect(page.locator("#detail-name")).to_have_text(diamond["right"]["name"])  # the branch's detail is drawn
    expect(page.locator("#detail-depends a.job-link")).to_have_count(1)
    expect(page.locator("#detail-depends a.job-link")).to_have_attribute("href", f"/jobs/{root}")
    expect(page.locator("#detail-dependents a.job-link")).to_have_attribute("href", f"/jobs/{join}")


def test_the_form_creates_a_job_that_waits_and_says_which_id_does_not_exist(
    page: Page, base: str, diamond: dict[str, Any]
) -> None:
    root = diamond["root"]["id"]
    open_dashboard(page, base)
    page.locator("#job-type").select_option("demo.noop")
    page.locator("#workflow summary").click()
    gone = "0" * 21
    page.locator("#job-name").fill(unique("never"))
    page.locator("#job-depends-on").fill(f"{root}, {gone}")
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#job-depends-on-error")).to_have_text(f"no job {gone}")

    name = unique("after the root")
    page.locator("#job-name").fill(name)
    page.locator("#job-depends-on").fill(root)
    page.get_by_role("button", name="Create job").click()

    row = row_by_name(page, name)
    expect(row.locator(".what")).to_have_text("waiting for 1 job")
    assert api_job(base, row.get_attribute("data-id") or "")["depends_on"] == [root]
