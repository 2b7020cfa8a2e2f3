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
    env = {
        "RAMFER_STORAGE_DIR": str(tmp_path_factory.mktemp("browser") / "storage"),
        "RAMFER_MODEL_DIR": str(model_dir),
        "RAMFER_TORCH_THREADS": "1",
    }
    with running_service(env) as (url, _):
        yield url


@contextlib.contextmanager
def page_of(url: str, args: tuple[str, ...] = ()):
    """A Chromium page on the service's web page, with the model line loaded; page errors collected."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                *args,
            ],
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
            "[...document.querySelectorAll('#attention img')].length === 3 && "  # peak, peak clip, peak evidence
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
            "[...document.querySelectorAll('#people img')].length === 8 && "  # per person: face, peak, peak clip, peak evidence
            "[...document.querySelectorAll('#people img')].every(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000,
        )
        people = page.locator("#people .person")
        assert people.count() == 2
        said = sorted(people.nth(k).locator(".label").inner_text().strip().lower() for k in range(2))
        assert said == ["happy", "neutral"]
        assert all(
            people.nth(k).locator("rect.clip").count() == 21 for k in range(2)
        )  # each person's 48-frame timeline
        page.screenshot(path=str(OUTPUT / "browser-people.png"), full_page=True)
        errors = page.errors
    assert not errors, errors


@pytest.mark.parametrize("held", ["upright", "sideways"])
def test_the_video_plays_beside_the_result_with_each_persons_box_and_label(service_url, held, tmp_path):
    """The uploaded video plays on the page, streamed in byte ranges; a click on the timeline seeks
    there, and each person's box and label at that moment are drawn over it. Sideways: stored as a
    phone stores a video (turned, with a display matrix): Chromium turns it as the service did, so
    the boxes, in the displayed frame's pixels, sit on the faces all the same."""
    import json

    from conftest import CALM, LONDON, SMILER

    if not (LONDON / "smiling").is_dir():
        pytest.skip(f"the London set is not at {LONDON}")
    from videos import london_tile, people_frames, write_video

    from training.video import UPRIGHT, Orientation

    smiler, calm = (
        london_tile(SMILER, 170),
        london_tile(CALM, 170),
    )  # conftest's `side`: the smiler left, the calm one right
    video = write_video(
        tmp_path / f"{held}.mp4",
        people_frames(48, [(smiler, lambda i: (60 + i, 100)), (calm, lambda i: (400 - i, 90))]),
        orientation=UPRIGHT if held == "upright" else Orientation(90),
    )
    with page_of(service_url) as page:
        ranged = []
        page.on("response", lambda r: ranged.append(r.status) if r.url.endswith("/video") else None)
        upload(page, video)
        page.wait_for_function("document.getElementById('player').readyState >= 2", timeout=30_000)
        assert page.evaluate("[player.videoWidth, player.videoHeight]") == [640, 360]  # as displayed, sideways too
        box = page.locator("#timeline svg").bounding_box()
        page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + 10)  # three quarters of 1.6 s
        page.wait_for_function("Math.abs(player.currentTime - 1.2) < 0.05 && !player.seeking", timeout=10_000)
        page.wait_for_function(
            "JSON.parse(document.getElementById('player-overlay').dataset.boxes || '[]').length === 2", timeout=10_000
        )
        drawn = sorted(json.loads(page.get_attribute("#player-overlay", "data-boxes")), key=lambda b: b["x"])
        now = page.inner_text("#player-now")
        page.screenshot(path=str(OUTPUT / f"browser-player-{held}.png"), full_page=True)
        errors = page.errors
    assert not errors, errors
    assert [b["label"] for b in drawn] == ["happy", "neutral"], drawn
    at = 36  # the frame at 1.2 s: the tiles' faces are centred near x = 60 + 36 + 85 and 400 - 36 + 85
    assert (
        abs(drawn[0]["x"] + drawn[0]["w"] / 2 - (60 + at + 85)) < 25
        and abs(drawn[1]["x"] + drawn[1]["w"] / 2 - (400 - at + 85)) < 25
    ), drawn
    assert now.startswith("1.2") and "happy" in now and "neutral" in now
    assert 206 in ranged, ranged  # the player asked for byte ranges


def write_y4m(video: Path, path: Path) -> Path:
    """A video's frames as a raw YUV4MPEG2 file (I420), which Chromium's fake camera plays in a loop."""
    import av

    with av.open(str(video)) as container, open(path, "wb") as out:
        stream = container.streams.video[0]
        rate = stream.average_rate or 15
        out.write(
            f"YUV4MPEG2 W{stream.width} H{stream.height} F{rate.numerator}:{rate.denominator} Ip A1:1 C420jpeg\n".encode()
        )
        for frame in container.decode(stream):
            out.write(b"FRAME\n" + frame.to_ndarray(format="yuv420p").tobytes())
    return path


def test_live_view_reads_the_smile_from_a_camera_in_a_real_browser(service_url, tmp_path):
    """Chromium's fake camera plays a real face video (the London smiler, CC BY 4.0) to the page's Live
    view, which streams it to WS /live: clips come back labelled, the face box is drawn on the video,
    and the decided expression is happy."""
    import time

    from conftest import LONDON, SMILER

    if not (LONDON / "smiling").is_dir():
        pytest.skip(f"the London set is not at {LONDON}")
    from videos import london_tile, people_frames, write_video

    smiler = london_tile(SMILER, 180)
    video = write_video(
        tmp_path / "smile.mp4", people_frames(60, [(smiler, lambda i: (200 + (i if i < 30 else 60 - i), 90))]), fps=15
    )
    y4m = write_y4m(video, tmp_path / "smile.y4m")
    deadline = time.monotonic() + 60
    while httpx.get(service_url + "/readyz").json().get("live_workers", 0) < 1:
        assert time.monotonic() < deadline, "no live worker registered"
        time.sleep(0.5)
    OUTPUT.mkdir(exist_ok=True)
    with page_of(
        service_url,
        (
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}",
        ),
    ) as page:
        page.select_option("#live-fps", "15")
        page.click("#live-start")
        page.wait_for_function("document.querySelectorAll('#live-timeline rect.clip').length >= 10", timeout=90_000)
        page.wait_for_function(
            "document.getElementById('live-expression').textContent.trim() === 'happy'", timeout=60_000
        )
        box = [float(v) for v in page.get_attribute("#live-overlay", "data-box").split(",")]
        labels = page.eval_on_selector_all("#live-timeline rect.clip", "rs => rs.map(r => r.dataset.label)")
        status = page.inner_text("#live-status")
        cells = page.get_attribute("#live-attention", "data-cells")
        page.screenshot(path=str(OUTPUT / "browser-live.png"), full_page=True)
        page.click("#live-stop")
        page.wait_for_function("document.getElementById('live-start').disabled === false", timeout=30_000)
        errors = page.errors
    assert not errors, errors
    assert labels.count("happy") >= 0.6 * len(labels), labels
    # the tile's face (its box in the 640x360 frame): x from 200 to 230 + 180, y 90 to 270
    assert 200 < box[0] + box[2] / 2 < 410 and 90 < box[1] + box[3] / 2 < 270 and 40 < box[2] < 180, box
    assert "frames analysed" in status
    assert cells and all(int(n) > 1 for n in cells.split("x")), cells  # the attention grid was drawn
