"""The web page in a real browser: Debian's Chromium, driven by Playwright (no browser download),
against `python -m service serve` started for real (embedded Redis, a worker process).
The screenshot goes to test-output/browser.png."""

from __future__ import annotations

import contextlib
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


@pytest.fixture(scope="module")
def service_url(tmp_path_factory, model_dir):
    env = {"STORAGE_DIR": str(tmp_path_factory.mktemp("browser") / "storage"), "MODEL_DIR": str(model_dir), "TORCH_THREADS": "1"}
    with running_service(env) as (url, _):
        yield url


@contextlib.contextmanager
def page_of(url: str):
    """A Chromium page on the service's web page, with the model line loaded; page errors collected."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_function("document.getElementById('model-line').textContent.includes('Model:')")
        yield page
        browser.close()


def upload(page, video: Path) -> None:
    page.set_input_files("#file", str(video))
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)


def test_upload_in_a_real_browser_shows_expression_timeline_and_attention(service_url, videos):
    OUTPUT.mkdir(exist_ok=True)
    with page_of(service_url) as page:
        upload(page, videos["astronaut_mp4"])
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
        assert page.locator("#people .person").count() == 1
        page.screenshot(path=str(OUTPUT / "browser.png"), full_page=True)
        errors = page.errors
    assert not errors, errors
    assert (OUTPUT / "browser.png").stat().st_size > 10_000


def test_two_people_in_a_real_browser_each_with_face_expression_timeline_and_maps(service_url, people_videos):
    """The smiler on the left, the calm person on the right: the page shows both."""
    OUTPUT.mkdir(exist_ok=True)
    with page_of(service_url) as page:
        upload(page, people_videos["side"])
        page.wait_for_function(
            "[...document.querySelectorAll('#people img')].length === 6 && "  # per person: face, peak, peak clip
            "[...document.querySelectorAll('#people img')].every(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000,
        )
        people = page.locator("#people .person")
        assert people.count() == 2
        said = sorted(people.nth(k).locator(".label").inner_text().strip().lower() for k in range(2))
        assert said == ["happy", "neutral"]
        assert all(people.nth(k).locator("rect.clip").count() == 21 for k in range(2))  # each person's 48-frame timeline
        page.screenshot(path=str(OUTPUT / "browser-people.png"), full_page=True)
        errors = page.errors
    assert not errors, errors
