"""Every face of a video followed as one person each (training/tracks.py): on made-up detections,
where every case can be set up exactly, and on real faces through the real detector."""

from __future__ import annotations

import numpy as np
import pytest

from training.faces import FACE_DIM, FaceDetector
from training.tracks import MIN_DETECTIONS, Tracker, track_people


def face(cx: float, cy: float, side: float) -> np.ndarray:
    row = np.full(FACE_DIM, np.nan, np.float32)
    row[:3] = cx, cy, side
    return row


def follow(tracker: Tracker, frames: list[list[np.ndarray]]) -> list[dict[int, float]]:
    """Each frame's {person: cx} as the tracker assigns the given detections."""
    return [{p: float(r[0]) for p, r in tracker.update(i, rows).items()} for i, rows in enumerate(frames)]


def test_two_people_crossing_keep_their_tracks_while_one_hides_the_other():
    # A (large, in front) walks right, B (smaller, behind) walks left; while they overlap only A is seen
    frames = []
    for i in range(40):
        a, b = face(100 + 10 * i, 200, 120), face(500 - 10 * i, 190, 80)
        frames.append([a] if 14 <= i <= 26 else [b, a])
    seen = follow(tracker := Tracker(max_gap=30), frames)
    assert len(tracker.tracks) == 2
    a_id = next(p for p, x in seen[0].items() if x == 100)
    b_id = 3 - a_id
    for i, faces in enumerate(seen):
        assert faces[a_id] == 100 + 10 * i  # A never loses its track, nor gives it to B
        if b_id in faces:
            assert faces[b_id] == 500 - 10 * i and not 14 <= i <= 26


def test_a_short_gap_keeps_the_person_a_long_one_makes_a_new_one():
    tracker = Tracker(max_gap=5)
    frames = [[face(300, 200, 100)] if i < 10 or 14 <= i < 20 or i >= 30 else [] for i in range(40)]
    seen = follow(tracker, frames)
    assert {p for s in seen[:20] for p in s} == {1}  # 4 frames unseen: the same person
    assert {p for s in seen[30:] for p in s} == {2}  # 10 frames unseen: someone new (no re-identification)
    assert [(t.first, t.last) for t in tracker.tracks.values()] == [(0, 19), (30, 39)]


def test_of_more_faces_than_max_faces_the_largest_are_followed_and_the_rest_counted():
    tracker = Tracker(max_faces=2)
    crowd = [face(100 * k, 200, 30 + 10 * k) for k in range(5)]  # sides 30..70
    seen = follow(tracker, [crowd] * 5)
    assert all(sorted(s.values()) == [300.0, 400.0] for s in seen)
    assert (tracker.most_in_frame, tracker.dropped) == (5, 3)


def test_faces_under_min_face_are_not_followed_and_a_few_detections_are_no_one():
    tracker = Tracker(min_face=40)
    follow(tracker, [[face(100, 100, 30), face(400, 100, 90)]] * 6 + [[face(400, 100, 90), face(200, 300, 60)]] * 2)
    assert len(tracker.tracks) == 2  # the 30 px face never became a track
    assert [t.detections for t in tracker.people()] == [8]  # the face seen twice is listed nowhere
    assert MIN_DETECTIONS > 2


def test_a_face_far_from_everyone_is_someone_new():
    tracker = Tracker()
    seen = follow(tracker, [[face(100, 200, 100)], [face(103, 200, 100)], [face(400, 200, 100)]])
    assert list(seen[2]) == [2]  # three face widths away in one frame: not person 1


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


def test_real_faces_crossing_are_two_people_each_on_their_own_path(detector, people_videos):
    from training.video import read_frames

    frames = list(read_frames(people_videos["cross"]))
    tracker = Tracker(max_gap=30)
    seen = list(track_people(frames, detector, tracker, radius=3, batch=16))
    assert [t.id for t in tracker.people()] == [1, 2]
    for person in (1, 2):
        xs = [t.faces[person][0] for t in seen if person in t.faces]
        steps = np.diff(xs)
        # one walks left, one right, 8 px a frame: a track that swapped people would turn round
        assert np.all(np.sign(steps) == np.sign(np.median(steps))) and 6 < abs(np.median(steps)) < 10


def test_least_cost_assignment_is_scipys_with_one_person_or_many():
    """One person's assignment is found without scipy (the row's cheapest column); the same pairs as
    linear_sum_assignment for one row and for several, gated costs and the miss column included."""
    from scipy.optimize import linear_sum_assignment

    from training.tracks import GATED, MISS, least_cost_assignment

    rng = np.random.default_rng(0)
    for people in (1, 1, 1, 2, 3):
        for faces in (1, 2, 4):
            cost = np.full((people, faces + people), GATED)
            cost[:, :faces] = np.where(rng.random((people, faces)) < 0.3, GATED, rng.random((people, faces)) * 2)
            cost[np.arange(people), faces + np.arange(people)] = MISS
            rows, cols = least_cost_assignment(cost)
            want_rows, want_cols = linear_sum_assignment(cost)
            assert rows.tolist() == want_rows.tolist() and cols.tolist() == want_cols.tolist()
