"""The face detector (training/detector.py, MediaPipe's BlazeFace, through training.faces.FaceDetector):
real faces found with their landmarks, nothing found where there is no face, a batch as single frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import LONDON
from test_faces import astronaut_gray, iou

from training.faces import FACE_DIM, box_from_eyes_mouth, crop_face, to_gray


def test_detector_finds_a_real_face_and_its_landmarks(detector):
    face = detector(astronaut_gray())
    assert face is not None and face.shape == (FACE_DIM,)
    cx, cy, side = face[:3]
    assert 180 < cx < 300 and 80 < cy < 200 and 70 < side < 220  # her face, not the flag or the suit
    right_eye, left_eye, nose, mouth = face[3:11].reshape(4, 2)
    # where they are in skimage's astronaut (read off the picture: pupils, nose tip, lips' middle)
    for got, want in ((right_eye, (204, 102)), (left_eye, (246, 104)), (nose, (224, 126)), (mouth, (224, 146))):
        assert np.hypot(*(got - want)) < 8, (got, want)


def test_detector_handles_tiny_prepared_crops(detector):
    gray = astronaut_gray()
    small = crop_face(gray, detector(gray)[:3], 48, 1.2)
    found = detector(small)
    assert found is not None and 30 < found[2] < 48  # the face in a 48 px crop is found too


def test_batch_gives_the_single_frame_results(detector):
    from videos import astronaut_frames, blank_frames

    grays = [to_gray(f) for f in astronaut_frames(4)] + blank_frames(1, size=(640, 360)) + [astronaut_gray()]
    batch = detector.detect_whole(grays)  # one network call for all six (the region search: tests/test_faces.py)
    single = [detector.detect_whole([g])[0] for g in grays]
    assert [b is None for b in batch] == [s is None for s in single] == [False] * 4 + [True, False]
    for b, s in zip(batch, single):
        if b is not None:
            np.testing.assert_allclose(b, s, atol=0.05)


def test_no_face_found_in_pictures_without_one(detector):
    from skimage import data

    pictures = [
        data.chelsea(),
        data.coffee(),
        data.rocket(),
        data.page(),
        data.text(),
        data.brick(),
        data.grass(),
        data.moon(),
        data.cell(),
        data.coins(),
        data.clock(),
        data.gravel(),
    ]
    rng = np.random.default_rng(0)
    pictures += [
        cv2.GaussianBlur(rng.integers(0, 256, (360, 640), dtype=np.uint8), (0, 0), sigma) for sigma in (0.5, 2, 5)
    ]
    found = [
        i
        for i, p in enumerate(pictures)
        if detector(to_gray(p if p.ndim == 2 else cv2.cvtColor(p, cv2.COLOR_RGB2BGR))) is not None
    ]
    assert found == []


@pytest.mark.skipif(not LONDON.is_dir(), reason="the London set (../shared/datasets) is not on this machine")
def test_landmarks_match_the_london_templates(detector):
    """Eyes near the templates' pupils, the mouth near the lips' centre, the box where the
    calibration puts the Haar box (from the template's points), on 40 real faces."""
    from training.synthesis.template import read_template

    eye_err, mouth_err, ious = [], [], []
    for tem in sorted((LONDON / "neutral").glob("*.tem"))[:40]:
        face = detector(cv2.imread(str(tem.with_suffix(".jpg")), cv2.IMREAD_GRAYSCALE))
        pts = read_template(tem)
        ipd = np.hypot(*(pts[1] - pts[0]))
        k = face[3:].reshape(6, 2)
        eye_err.append(max(np.hypot(*(k[0] - pts[0])), np.hypot(*(k[1] - pts[1]))) / ipd)
        mouth_err.append(np.hypot(*(k[3] - pts[87:109].mean(0))) / ipd)
        ious.append(iou(face, box_from_eyes_mouth(pts[0], pts[1], pts[87:109].mean(0))))
    assert np.median(eye_err) < 0.08 and max(eye_err) < 0.2
    assert np.median(mouth_err) < 0.1 and max(mouth_err) < 0.25
    assert np.median(ious) > 0.85 and min(ious) > 0.7


@pytest.mark.skipif(not LONDON.is_dir(), reason="the London set (../shared/datasets) is not on this machine")
def test_every_london_photo_is_found(detector):
    photos = sorted(LONDON.glob("neutral/*.jpg")) + sorted(LONDON.glob("smiling/*.jpg"))
    grays = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in photos]
    found = [f for b in range(0, len(grays), 16) for f in detector.detect_batch(grays[b : b + 16])]
    assert len(photos) == 204 and [p.name for p, f in zip(photos, found) if f is None] == []
