"""Faces, their landmarks, their smoothing and the crop: the preprocessing training and serving share."""

from __future__ import annotations

import cv2
import numpy as np

from training.faces import (
    FACE_DIM,
    CropConfig,
    align_face,
    box_from_eyes_mouth,
    crop_face,
    crop_frame,
    fill_missing,
    landmarks_box,
    landmarks_face,
    smooth_boxes,
    to_gray,
)
from training.tracks import Tracker, track_people
from training.video import Frame

NAN = np.nan


def astronaut_gray():
    from skimage import data

    return to_gray(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))


def iou(a, b) -> float:
    (ax, ay, aside), (bx, by, bside) = a[:3], b[:3]
    ix = max(0.0, min(ax + aside / 2, bx + bside / 2) - max(ax - aside / 2, bx - bside / 2))
    iy = max(0.0, min(ay + aside / 2, by + bside / 2) - max(ay - aside / 2, by - bside / 2))
    inter = ix * iy
    return inter / (aside**2 + bside**2 - inter)


def test_smoothing_is_a_centred_mean_that_skips_missing_detections():
    boxes = np.array(
        [[0, 0, 10], [NAN, NAN, NAN], [6, 3, 16], [NAN, NAN, NAN], [NAN, NAN, NAN], [NAN, NAN, NAN], [30, 30, 40]]
    )
    out = smooth_boxes(boxes, radius=1)
    np.testing.assert_allclose(out[0], [0, 0, 10])  # window [0, 1]: frame 1 is missing
    np.testing.assert_allclose(out[1], [3, 1.5, 13])  # mean of frames 0 and 2
    np.testing.assert_allclose(out[3], [6, 3, 16])
    assert np.isnan(out[4]).all()  # no detection within +-1 frame
    np.testing.assert_allclose(out[6], [30, 30, 40])
    filled = fill_missing(out)
    np.testing.assert_allclose(filled[4], out[3])  # the nearest frame's box (3 before 5 on a tie)


def test_landmarks_are_smoothed_with_their_box():
    faces = np.zeros((3, FACE_DIM), np.float32)
    faces[:, 3:] = np.arange(12)
    faces[1, 3:] += 3.0  # the middle frame's landmarks jump by 3 px
    out = smooth_boxes(faces, radius=1)
    np.testing.assert_allclose(out[0, 3:], np.arange(12) + 1.5)
    np.testing.assert_allclose(out[1, 3:], np.arange(12) + 1.0)


def test_streamed_tracking_of_one_person_equals_the_offline_smoothing(detector):
    """What the service follows of a one-person video is what training crops: the detector's
    faces smoothed over +-radius frames (smooth_boxes), and the faces detect_video finds."""
    from videos import astronaut_frames

    frames = [Frame(i, i / 30, to_gray(f)) for i, f in enumerate(astronaut_frames(20))]
    for every, batch in ((1, 16), (1, 1), (3, 1), (1, 6), (2, 4)):
        raw = np.full((len(frames), FACE_DIM), NAN, np.float32)  # what the detector answered, frame by frame
        asked: list[list[int]] = []

        def recording(grays, near=(), look_for_new=True):
            found = detector.detect_people(grays, near=near, look_for_new=look_for_new)
            idx = [i for i, f in enumerate(frames) if any(f.gray is g for g in grays)]
            asked.append(idx)  # noqa: B023  called within this iteration
            for i, rows in zip(idx, found):
                assert len(rows) == 1  # one person
                raw[i] = rows[0]  # noqa: B023  called within this iteration
            return found

        tracked = list(track_people(frames, recording, Tracker(), radius=3, detect_every=every, batch=batch))
        assert [t.index for t in tracked] == list(range(20))
        assert sorted(i for a in asked for i in a) == list(range(0, 20, every))  # every k-th frame, each once
        assert not np.isnan(raw[::every]).any()  # a real face: found in every frame looked at, with its landmarks
        assert all(list(t.faces) == [1] for t in tracked)
        np.testing.assert_allclose(np.stack([t.faces[1] for t in tracked]), smooth_boxes(raw, 3), rtol=1e-4, atol=1e-3)
        if batch == 16:  # training's detect_video (batches of 16) finds the same faces
            np.testing.assert_allclose(detector.detect_video([f.gray for f in frames]), raw, rtol=1e-4, atol=1e-3)


def test_a_region_around_the_last_face_finds_what_the_whole_frame_finds(detector):
    """detect_batch looks near the face found before (128 px around it) instead of the whole
    frame (192 px): the same face, its landmarks within a quarter of the eye distance."""
    from videos import astronaut_frames

    grays = [to_gray(f) for f in astronaut_frames(20)]
    whole = detector.detect_whole(grays)
    near = detector.detect_batch(grays[:1])[0]
    region = detector.detect_batch(grays, near=near)
    for w, r in zip(whole, region):
        eyes = w[3:].reshape(6, 2)[:2]
        gap = np.linalg.norm(w[3:11].reshape(4, 2) - r[3:11].reshape(4, 2), axis=1).max()
        assert gap < 0.25 * np.linalg.norm(
            eyes[0] - eyes[1]
        )  # the two searches differ by ~0.07 median (benchmarks/detector_regions.py)
    # a region with no face in it (far from where the face is) falls back to the whole frame
    elsewhere = near.copy()
    elsewhere[:2] = (20.0, 20.0)
    elsewhere[2] = 10.0
    moved = detector.detect_batch(grays[:2], near=elsewhere)
    np.testing.assert_allclose(moved[0][:3], whole[0][:3], rtol=1e-4, atol=1e-2)


def test_tracking_marks_frames_after_the_face_left(detector):
    from videos import astronaut_frames, blank_frames

    faces = [to_gray(f) for f in astronaut_frames(6)]
    blanks = blank_frames(10, size=(640, 360))
    frames = [Frame(i, i / 30, g) for i, g in enumerate(faces + blanks)]
    tracked = list(track_people(frames, detector, Tracker(), radius=2, batch=4))
    has = [1 in t.faces for t in tracked]
    assert has == [True] * 6 + [False] * 10  # the last face is within reach of 2 blank frames, but gone


def test_crop_outside_the_frame_repeats_the_border():
    gray = np.tile(np.arange(100, dtype=np.uint8), (80, 1))
    crop = crop_face(gray, np.array([5.0, 40.0, 40.0]), 48, 1.2)
    assert crop.shape == (48, 48)
    assert (crop[:, :10] == 0).all()  # left of the frame: the first column, repeated


def test_a_48px_face_in_a_640x360_frame_is_found(detector):
    gray = astronaut_gray()
    face = detector(gray)
    s = 48 / face[2]  # the picture scaled so the face box is 48 px
    small = cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    frame = np.full((360, 640), 90, np.uint8)
    frame[100 : 100 + small.shape[0], 300 : 300 + small.shape[1]] = small
    found = detector(frame)
    assert found is not None
    want = face[:2] * s + (300, 100)
    assert np.hypot(*(found[:2] - want)) < 8 and 38 < found[2] < 58


def test_landmark_boxes_match_detector_boxes_on_synthetic_faces(detector):
    from training.synthesis.drawn import render_sequence
    from training.synthesis.drawn_face import make_subject

    scores = []
    for i in range(8):
        rng = np.random.default_rng(100 + i)
        frames, landmarks = render_sequence(make_subject(rng), "happy", 6, rng)
        found = detector(to_gray(frames[0]))
        if found is not None:
            scores.append(iou(found, landmarks_box(landmarks[0])))
    assert len(scores) >= 6 and np.median(scores) > 0.6


def test_ckplus_landmarks_give_the_detectors_canonical_points():
    p = np.zeros((68, 2))
    p[36:42] = (10, 20)
    p[42:48] = (30, 22)
    p[48:68] = (20, 40)
    p[30] = (20, 30)
    face = landmarks_face(p)
    np.testing.assert_allclose(face[3:11].reshape(4, 2), [(10, 20), (30, 22), (20, 30), (20, 40)])
    np.testing.assert_allclose(face[:3], box_from_eyes_mouth((10, 20), (30, 22), (20, 40)))


def test_aligned_crop_puts_the_eyes_level_at_the_configured_place():
    """Two dots for eyes on a tilted line: after alignment they are level, eye_distance apart,
    their midpoint at (size/2, eye_height * size)."""
    crop = CropConfig(align=True, size=96, eye_distance=0.4, eye_height=0.4)
    img = np.zeros((400, 600), np.uint8)
    right, left = np.array([250.0, 200.0]), np.array([250 + 90 * np.cos(0.4), 200 + 90 * np.sin(0.4)])  # tilted 23 deg
    for p in (right, left):
        cv2.circle(img, (int(round(p[0])), int(round(p[1]))), 4, 255, -1)
    out = align_face(img, np.stack([right, left]), crop)
    assert out.shape == (96, 96)
    n, _labels, _stats, centres = cv2.connectedComponentsWithStats((out > 100).astype(np.uint8))
    dots = sorted(centres[1:], key=lambda c: c[0])
    assert n == 3
    (x0, y0), (x1, y1) = dots
    assert abs(y0 - y1) < 1.0  # level
    assert abs((x1 - x0) - 0.4 * 96) < 1.5  # eye distance
    assert abs((x0 + x1) / 2 - 48) < 1.0 and abs((y0 + y1) / 2 - 0.4 * 96) < 1.0


def test_aligned_crop_of_a_rolled_real_face_has_level_eyes(detector):
    gray = astronaut_gray()
    m = cv2.getRotationMatrix2D((225, 120), 25, 1.0)
    rolled = cv2.warpAffine(gray, m, gray.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
    crop = CropConfig(align=True)
    big = align_face(rolled, detector(rolled)[3:].reshape(6, 2), crop, size=192)
    # the eyes, found again in the aligned crop (given a border: the full-range network misses
    # faces that fill the whole picture)
    framed = cv2.copyMakeBorder(big, 96, 96, 96, 96, cv2.BORDER_REPLICATE)
    k = detector.detect_whole([framed])[0][3:].reshape(6, 2) - 96
    assert abs(k[0, 1] - k[1, 1]) < 0.03 * 192  # level (the roll was 25 deg: ~20 px of 192 before)
    assert abs((k[0, 1] + k[1, 1]) / 2 - crop.eye_height * 192) < 0.04 * 192
    assert abs((k[1, 0] - k[0, 0]) - crop.eye_distance * 192) < 0.05 * 192


def test_old_crop_configs_read_as_box_crops(detector):
    import json

    from training.bundled import SYNTHETIC_7CLASS
    from training.checkpoint import crop_config

    old = {"size": 48, "scale": 1.2, "smooth_radius": 3, "detect_max_side": 320}  # a checkpoint made before BlazeFace
    assert CropConfig.from_dict(old) == CropConfig() and not CropConfig.from_dict(old).align
    served = json.loads((SYNTHETIC_7CLASS / "config.json").read_text())  # trained before aligned crops: box crops
    assert crop_config(served) == CropConfig.from_dict(old)
    gray = astronaut_gray()
    face = detector(gray)
    np.testing.assert_array_equal(crop_frame(gray, face, CropConfig()), crop_face(gray, face[:3], 48, 1.2))
    assert not np.array_equal(crop_frame(gray, face, CropConfig(align=True)), crop_face(gray, face[:3], 48, 1.2))
