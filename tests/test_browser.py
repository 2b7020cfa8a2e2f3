"""The web page in a real browser: Debian's Chromium, driven by Playwright (no browser download),
against `python -m service serve` started for real (embedded Redis, a worker process).
The screenshot goes to test-output/browser.png."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from live_service import running_service

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUTPUT = Path(__file__).resolve().parents[1] / "test-output"

if not Path(CHROMIUM).exists():
    if os.environ.get("RAMFER_REQUIRE_BROWSER"):  # CI installs Chromium and must not skip this
        raise RuntimeError(f"Chromium is required (RAMFER_REQUIRE_BROWSER) but {CHROMIUM} is missing")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture
def service_url(tmp_path, model_dir):
    env = {"STORAGE_DIR": str(tmp_path / "storage"), "MODEL_DIR": str(model_dir), "TORCH_THREADS": "1"}
    with running_service(env) as (url, _):
        yield url


def test_upload_in_a_real_browser_shows_expression_timeline_and_attention(service_url, videos):
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(service_url + "/")
        page.wait_for_function("document.getElementById('model-line').textContent.includes('Model:')")
        page.set_input_files("#file", str(videos["astronaut_mp4"]))
        page.click("#submit")
        page.wait_for_selector("#result:not([hidden])", timeout=120_000)
        expression = page.inner_text("#expression").strip().lower()
        classes = httpx.get(service_url + "/model").json()["classes"]
        assert expression in classes
        assert page.locator("#timeline rect.clip").count() == 17  # one per clip of the 40-frame video
        assert page.inner_text("#segments").strip().endswith("1.33 s")  # the timeline in words, to the video's end
        page.wait_for_function(
            "[...document.querySelectorAll('#attention img')].length === 2 && "
            "[...document.querySelectorAll('#attention img')].every(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000,
        )
        page.screenshot(path=str(OUTPUT / "browser.png"), full_page=True)
        browser.close()
    assert not errors, errors
    assert (OUTPUT / "browser.png").stat().st_size > 10_000
