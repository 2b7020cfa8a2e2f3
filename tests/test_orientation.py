"""Videos as phones store them: frames stored sideways (or upside down, or mirrored) with the
container saying how to show them. Every reader turns them upright, so the same face gets the
same answer however the phone was held."""

from __future__ import annotations

import numpy as np
import pytest
from videos import LOSSLESS

from service.pipeline import Predictor, analyse_video
from service.settings import Settings
from training.video import UPRIGHT, Orientation, write_video


@pytest.fixture(scope="module")
def predictor(model_dir):
    return Predictor(model_dir)


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    """The astronaut's smiling face (a real face) stored upright and as phones store it: sideways
    both ways, upside down, mirrored, and with the older `rotate` tag; lossless, so the stored
    frames turned upright are the upright video's to the pixel."""
    from videos import astronaut_frames

    d = tmp_path_factory.mktemp("held")
    frames = astronaut_frames(40)
    ways = {
        "upright": (UPRIGHT, False, ".mp4"),
        "90": (Orientation(90), False, ".mp4"),
        "180": (Orientation(180), False, ".mp4"),
        "270": (Orientation(270), False, ".mov"),
        "90 mirrored": (Orientation(90, True), False, ".mp4"),
        "90 tag": (Orientation(90), True, ".mkv"),
        "180 tag": (Orientation(180), True, ".mkv"),
        "270 tag": (Orientation(270), True, ".mkv"),
    }
    return {
        name: write_video(d / f"{name.replace(' ', '_')}{suffix}", frames, orientation=o, as_tag=tag, options=LOSSLESS)
        for name, (o, tag, suffix) in ways.items()
    }


def clip_probabilities(result: dict) -> np.ndarray:
    return np.array([list(c["probabilities"].values()) for c in result["clips"]])


def test_a_phone_video_held_any_way_gets_the_upright_answer(predictor, held, tmp_path, model_dir):
    settings = Settings(model_dir=model_dir, storage_dir=tmp_path)
    upright = analyse_video(held["upright"], predictor, settings)
    assert (
        upright["expression"] == "happy" and upright["video"] | {"rotation": 0, "mirrored": False} == upright["video"]
    )
    for name in ["90", "180", "270", "90 mirrored", "90 tag", "180 tag", "270 tag"]:
        result = analyse_video(held[name], predictor, settings)
        o = Orientation(int(name.split()[0]), "mirrored" in name)
        assert (result["video"]["rotation"], result["video"]["mirrored"]) == (o.rotation, o.mirrored), name
        assert (result["video"]["width"], result["video"]["height"]) == (640, 360), name  # as displayed
        assert len(result["people"]) == len(upright["people"]) == 1, name
        assert result["expression"] == upright["expression"], name
        assert [c["label"] for c in result["clips"]] == [c["label"] for c in upright["clips"]], name
        np.testing.assert_allclose(clip_probabilities(result), clip_probabilities(upright), atol=2e-4, err_msg=name)
        assert result["people"][0]["box_at_peak"] == pytest.approx(upright["people"][0]["box_at_peak"], abs=0.5), name


def test_a_sideways_phone_video_as_phones_encode_it_reads_the_same(predictor, tmp_path, model_dir):
    """Lossy H.264, as a phone writes it: the stored frames are coded in other blocks than the
    upright ones, so the numbers differ by the codec's noise, not the answer."""
    from videos import astronaut_frames

    frames = astronaut_frames(40)
    settings = Settings(model_dir=model_dir, storage_dir=tmp_path)
    upright = analyse_video(write_video(tmp_path / "upright.mp4", frames), predictor, settings)
    sideways = analyse_video(
        write_video(tmp_path / "sideways.mp4", frames, orientation=Orientation(90)), predictor, settings
    )
    assert sideways["expression"] == upright["expression"] == "happy"
    assert sideways["video"]["rotation"] == 90 and (sideways["video"]["width"], sideways["video"]["height"]) == (
        640,
        360,
    )
    np.testing.assert_allclose(clip_probabilities(sideways), clip_probabilities(upright), atol=0.05)


def test_two_real_people_filmed_sideways_are_the_same_people_with_the_same_expressions(predictor, tmp_path, model_dir):
    """The London smiler and a calm person side by side (conftest's `side`), stored upright, sideways
    and upside down: the same two people, each with their own expression and clip probabilities."""
    from conftest import CALM, LONDON, SMILER

    if not (LONDON / "smiling").is_dir():
        pytest.skip(f"the London set is not at {LONDON}")
    from videos import london_tile, people_frames

    frames = people_frames(
        48, [(london_tile(SMILER, 170), lambda i: (60 + i, 100)), (london_tile(CALM, 170), lambda i: (400 - i, 90))]
    )
    settings = Settings(model_dir=model_dir, storage_dir=tmp_path)
    results = {
        o.rotation: analyse_video(
            write_video(tmp_path / f"side{o.rotation}.mp4", frames, orientation=o, options=LOSSLESS),
            predictor,
            settings,
        )
        for o in (UPRIGHT, Orientation(90), Orientation(180))
    }

    def by_side(result):
        return sorted(result["people"], key=lambda p: p["box_at_peak"]["x"])

    upright = by_side(results[0])
    assert [p["expression"] for p in upright] == ["happy", "neutral"]
    for rotation in (90, 180):
        people = by_side(results[rotation])
        assert [p["expression"] for p in people] == ["happy", "neutral"], rotation
        assert [p["frames"] for p in people] == [p["frames"] for p in upright], rotation
        for p, q in zip(people, upright):
            probabilities = [list(c["probabilities"].values()) for c in p["clips"]]
            np.testing.assert_allclose(
                probabilities, [list(c["probabilities"].values()) for c in q["clips"]], atol=2e-4
            )
            np.testing.assert_allclose(p["track"]["x"], q["track"]["x"], atol=0.5)
