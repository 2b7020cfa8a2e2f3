"""Face boxes, their smoothing and the crop: the preprocessing training and serving share."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import LONDON
from training.faces import (
    FaceDetector, box_from_eyes_mouth, crop_face, fallback_to_default, fill_missing, landmarks_box, smooth_boxes, to_gray, track_faces,
)
from training.video import Frame

NAN = np.nan


def iou(a, b) -> float:
    (ax, ay, aside), (bx, by, bside) = a, b
    ix = max(0.0, min(ax + aside / 2, bx + bside / 2) - max(ax - aside / 2, bx - bside / 2))
    iy = max(0.0, min(ay + aside / 2, by + bside / 2) - max(ay - aside / 2, by - bside / 2))
    inter = ix * iy
    return inter / (aside**2 + bside**2 - inter)


def test_smoothing_is_a_centred_mean_that_skips_missing_detections():
    boxes = np.array([[0, 0, 10], [NAN, NAN, NAN], [6, 3, 16], [NAN, NAN, NAN], [NAN, NAN, NAN], [NAN, NAN, NAN], [30, 30, 40]])
    out = smooth_boxes(boxes, radius=1)
    np.testing.assert_allclose(out[0], [0, 0, 10])  # window [0, 1]: frame 1 is missing
    np.testing.assert_allclose(out[1], [3, 1.5, 13])  # mean of frames 0 and 2
    np.testing.assert_allclose(out[3], [6, 3, 16])
    assert np.isnan(out[4]).all()  # no detection within +-1 frame
    np.testing.assert_allclose(out[6], [30, 30, 40])
    filled = fill_missing(out)
    np.testing.assert_allclose(filled[4], out[3])  # the nearest frame's box (3 before 5 on a tie)


def test_streamed_tracking_equals_the_offline_smoothing():
    from videos import astronaut_frames

    frames = [Frame(i, i / 30, to_gray(f)) for i, f in enumerate(astronaut_frames(20))]
    detector = FaceDetector()
    raw = np.stack([b if (b := detector(f.gray)) is not None else np.full(3, NAN, np.float32) for f in frames])
    assert not np.isnan(raw).any()  # a real face: found in every frame
    for every in (1, 3):
        raw_k = raw.copy()
        raw_k[np.arange(len(raw)) % every != 0] = NAN
        tracked = list(track_faces(frames, detector, radius=3, detect_every=every))
        assert [t.index for t in tracked] == list(range(20))
        np.testing.assert_allclose(np.stack([t.box for t in tracked]), smooth_boxes(raw_k, 3), rtol=1e-6)


def test_tracking_marks_frames_with_no_face_in_reach():
    from videos import astronaut_frames, blank_frames

    faces = [to_gray(f) for f in astronaut_frames(6)]
    blanks = blank_frames(10, size=(640, 360))
    frames = [Frame(i, i / 30, g) for i, g in enumerate(faces + blanks)]
    tracked = list(track_faces(frames, FaceDetector(), radius=2))
    has = [t.box is not None for t in tracked]
    assert has == [True] * 8 + [False] * 8  # the last face is within reach of 2 blank frames


def test_crop_outside_the_frame_repeats_the_border():
    gray = np.tile(np.arange(100, dtype=np.uint8), (80, 1))
    crop = crop_face(gray, np.array([5.0, 40.0, 40.0]), 48, 1.2)
    assert crop.shape == (48, 48)
    assert (crop[:, :10] == 0).all()  # left of the frame: the first column, repeated


def test_detector_finds_a_real_face():
    from skimage import data

    box = FaceDetector()(to_gray(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)))
    assert box is not None
    assert 180 < box[0] < 300 and 80 < box[1] < 200 and 70 < box[2] < 220  # her face, not the flag or the suit


def test_detector_handles_tiny_prepared_crops():
    from skimage import data

    gray = to_gray(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    box = FaceDetector()(gray)
    small = crop_face(gray, box, 48, 1.2)
    found = FaceDetector()(small)
    assert found is not None and 30 < found[2] < 48  # the face in a 48 px crop is found too


@pytest.mark.skipif(not LONDON.is_dir(), reason="the London set (../shared/datasets) is not on this machine")
def test_landmark_boxes_match_detector_boxes_on_real_faces():
    """The calibration training relies on: a box from facial points frames a face as Haar does."""
    from benchmarks.calibrate_face_box import read_template

    detector = FaceDetector()
    scores = []
    for tem in sorted((LONDON / "neutral").glob("*.tem"))[:40]:
        gray = cv2.imread(str(tem.with_suffix(".jpg")), cv2.IMREAD_GRAYSCALE)
        pts = read_template(tem)
        scores.append(iou(detector(gray), box_from_eyes_mouth(pts[0], pts[1], pts[87:109].mean(0))))
    assert np.median(scores) > 0.85 and min(scores) > 0.6


def test_landmark_boxes_match_detector_boxes_on_synthetic_faces():
    from training.synthesis.drawn import make_subject, render_sequence

    detector = FaceDetector()
    scores = []
    for i in range(8):
        rng = np.random.default_rng(100 + i)
        frames, landmarks = render_sequence(make_subject(rng), "happy", 6, rng)
        found = detector(to_gray(frames[0]))
        if found is not None:
            scores.append(iou(found, landmarks_box(landmarks[0])))
    assert len(scores) >= 6 and np.median(scores) > 0.6


@pytest.mark.skipif(not LONDON.is_dir(), reason="the London set (../shared/datasets) is not on this machine")
def test_fallback_cascade_finds_the_face_the_default_misses_and_frames_it_alike(tmp_path):
    """Person 042's video frame: the default cascade finds no face; the fallback's box, mapped
    onto the default's, frames him as the default frames the faces it finds (from his template)."""
    from benchmarks.calibrate_face_box import read_template
    from training.video import read_frames
    from videos import write_video

    photo = LONDON / "neutral" / "042_03.jpg"
    video = write_video(tmp_path / "042.mp4", [cv2.imread(str(photo))] * 2)  # H.264, as the evaluation sends it
    gray = next(iter(read_frames(video))).gray
    assert FaceDetector(fallback=False)(gray) is None  # why the fallback exists
    box = FaceDetector()(gray)
    assert box is not None
    pts = read_template(photo.with_suffix(".tem"))
    assert iou(box, box_from_eyes_mouth(pts[0], pts[1], pts[87:109].mean(0))) > 0.8


@pytest.mark.skipif(not LONDON.is_dir(), reason="the London set (../shared/datasets) is not on this machine")
def test_fallback_boxes_map_onto_the_default_cascades_boxes():
    detector = FaceDetector()
    scores = []
    for photo in sorted((LONDON / "smiling").glob("*.jpg"))[:30]:
        gray = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
        default, fallback = detector.detect(detector.cascade, gray), detector.detect(detector.fallback, gray)
        if default is not None and fallback is not None:
            scores.append(iou(default, fallback_to_default(fallback)))
    assert len(scores) >= 25 and np.median(scores) > 0.9 and min(scores) > 0.75


def test_no_face_found_in_pictures_without_one():
    """The fallback runs exactly where there is no face: it must not invent one."""
    from skimage import data

    pictures = [data.chelsea(), data.coffee(), data.rocket(), data.page(), data.text(), data.brick(), data.grass(), data.moon()]
    rng = np.random.default_rng(0)
    pictures += [cv2.GaussianBlur(rng.integers(0, 256, (360, 640), dtype=np.uint8), (0, 0), sigma) for sigma in (0.5, 2, 5)]
    detector = FaceDetector()
    found = [i for i, p in enumerate(pictures) if detector(to_gray(p if p.ndim == 2 else cv2.cvtColor(p, cv2.COLOR_RGB2BGR))) is not None]
    assert found == []


def test_fallback_runs_only_where_the_default_finds_nothing():
    """A frame with a face costs one cascade, and gets the default's box unchanged."""
    from skimage import data

    class CountingCascade:
        def __init__(self):
            self.calls = 0

        def detectMultiScale(self, *args, **kwargs):  # noqa: N802 (OpenCV's name)
            self.calls += 1
            return ()

    detector = FaceDetector()
    detector.fallback = counting = CountingCascade()
    face = to_gray(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(detector(face), FaceDetector(fallback=False)(face))
    assert counting.calls == 0
    assert detector(np.full((360, 640), 128, np.uint8)) is None and counting.calls == 1
