"""The status page in a real browser: Debian's chromium driven by Playwright, against a real daemon."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from support.daemon import TOKEN, DaemonProcess, free_port, running_daemon, wait_for, write_config
from support.frames import short_clip

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


def _chromium() -> str:
    path = os.environ.get("RVM_RENDER_CHROMIUM") or shutil.which("chromium")
    if path is None:
        pytest.fail("no chromium: install Debian's (apt-get install -y chromium; scripts/test.sh does as root) "
                    "or point RVM_RENDER_CHROMIUM at one")  # fmt: skip
    return path


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    port = free_port()
    with running_daemon(write_config(tmp_path, port=port), port) as running:
        yield running


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        yield context.new_page()
        context.close()
        browser.close()


def _row(page: Page, job_id: int):  # noqa: ANN202 - a Playwright locator
    return page.locator(f"tr.job[data-job-id='{job_id}']")


def test_sign_in_watch_a_job_finish_and_cancel_another(
    daemon: DaemonProcess, page: Page, clips_dir: Path, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    quick = daemon.client.submit(str(short_clip(clips_dir / "bedroom.mp4", media / "quick.mp4", 16)), priority=5)
    shutil.copy(clips_dir / "bedroom.mp4", media / "long.mp4")
    long = daemon.client.submit(str(media / "long.mp4"), output_dir=str(media / "long-out"))

    page.goto(daemon.client.url + "/")
    expect(page.locator("#signin")).to_be_visible()
    page.fill("#token", "not the token")
    page.click("#signin button")
    expect(page.locator("#signin-error")).to_have_text("Wrong token.")
    page.fill("#token", TOKEN)
    page.click("#signin button")
    expect(page.locator("#queue")).to_be_visible()

    expect(_row(page, quick["id"]).locator(".state")).to_have_text("done", timeout=120_000)
    thumbnail = _row(page, quick["id"]).locator("img.thumb")
    expect(thumbnail).to_be_visible()
    wait_for(lambda: thumbnail.evaluate("img => img.complete && img.naturalWidth > 0"), 20, "the matte thumbnail")
    expect(_row(page, quick["id"]).locator(".outputs a").first).to_have_text("quick.rvm.json")

    expect(_row(page, long["id"]).locator(".state")).to_have_text("running", timeout=60_000)
    wait_for(lambda: daemon.job(long["id"])["frames_done"] > 0, 60, "the long job to show progress")
    expect(_row(page, long["id"]).locator("progress")).to_have_attribute("max", "200")
    page.screenshot(path=str(tmp_path / "status-page.png"))
    _row(page, long["id"]).get_by_role("button", name="Cancel").click()
    expect(_row(page, long["id"]).locator(".state")).to_have_text("cancelled", timeout=20_000)
    assert daemon.job(long["id"])["state"] == "cancelled"
    assert list((media / "long-out").iterdir()) == []
    expect(_row(page, long["id"]).get_by_role("button", name="Retry")).to_be_visible()
