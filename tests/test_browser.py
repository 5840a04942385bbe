"""A person in the Prefect UI: find the main deployment, start a custom run with a changed parameter,
watch it complete, and see its artifacts. Headless Chromium from the system packages."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from storage import read_rows

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update",  # no calls beyond loopback
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed; `.ci/run` installs it with apt-get (package chromium).")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_custom_run_from_the_ui_completes_and_shows_artifacts(deployed, browser, tmp_path):
    output = tmp_path / "from-ui.jsonl"
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(f"{deployed.url}/deployments", wait_until="networkidle")
        assert page.get_by_text("text-generation").count() >= 1
        assert page.get_by_text("At 03:00 AM every day").count() == 1  # the declared schedule

        deployment = deployed.deployment("text-generation")
        page.goto(f"{deployed.url}/deployments/deployment/{deployment['id']}", wait_until="networkidle")
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_text("Custom run", exact=True).click()
        # the form rendered from the flow's pydantic parameters
        page.get_by_text("Generate answers for a file of instructions.").wait_for(timeout=20_000)
        page.locator("input[type=text]").first.fill("ui-custom-run")
        page.locator("textarea").nth(1).fill(str(output))  # Output
        page.get_by_role("button", name="int", exact=True).first.click()  # Limit: None -> int
        page.locator("input[type=number]").first.fill("4")
        page.get_by_role("button", name="Submit").click()

        page.get_by_role("link", name="ui-custom-run").first.click(timeout=30_000)
        page.wait_for_url("**/runs/flow-run/**", timeout=20_000)
        deadline = time.monotonic() + 180
        while not page.get_by_text("Completed", exact=True).count():
            assert time.monotonic() < deadline, deployed.log("worker")[-3000:]
            time.sleep(2)
            page.reload(wait_until="networkidle")
        page.get_by_text("Artifacts", exact=True).click()
        for key in ("text-generation-summary", "text-generation-output", "text-generation-progress"):
            page.get_by_text(key, exact=True).wait_for(timeout=20_000)
        page.screenshot(path=str(tmp_path / "completed-run.png"), full_page=True)
    finally:
        page.close()
    assert (tmp_path / "completed-run.png").stat().st_size > 10_000
    rows = list(read_rows(str(output)))
    assert len(rows) == 4 and all(r["generation"] for r in rows)  # the parameters typed in the form
