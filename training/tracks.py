"""Every face of a video followed from frame to frame: one track per person.

    frames -> every face of each frame (FaceDetector.detect_people)
           -> each frame's faces joined to the people of the frames before (one assignment a frame)
           -> each person's face smoothed over time -> PeopleFrame

A person's face in a frame is the mean of their own detections within +-radius frames: the
numbers `faces.smooth_boxes` gives a one-person video offline, which is what training crops.
A person is in a frame between their first detection and their last, short misses bridged.

Who is who comes from where each face is, where it was heading and how large it is, not from
what it looks like: a person who leaves and comes back after more than `max_gap` frames is a new
track (re-identification is not attempted). Two faces that cross keep their tracks while the
detector sees both, and while one hides the other the hidden one's track coasts along its
heading; faces at different distances (the usual case when one passes in front of another) are
also told apart by size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from training.faces import FACE_DIM, mean_box
from training.video import Frame

# A face may be matched to a person's predicted place if its centre is within this many face
# sides of it and its size within this factor: a head does not jump a face width between two
# looks, nor change size by half (a detection every frame, or every detect_every frames).
MAX_STEP = 1.0
MAX_GROWTH = 1.5
MIN_DETECTIONS = 3  # a track seen fewer times is taken for the detector's noise, not a person
# The cost of a face no person may take. linear_sum_assignment wants finite costs (with
# infinities it may find no complete assignment); a pair at this cost is refused after solving.
GATED = 1e6
# What leaving a person without a face in this frame costs: a face further from them than this
# (in face sides and log size ratio) is someone else's, or someone new. Without it the assignment
# would give every person some face, and a person hidden for a moment would take another's.
MISS = 1.0


def least_cost_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and their columns of least total cost (scipy's linear_sum_assignment). With one person
    that is the row's cheapest column, found without importing scipy.optimize (0.3 s of a one-face
    upload's process)."""
    if len(cost) == 1:
        return np.zeros(1, np.int64), np.array([int(np.argmin(cost[0]))])
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(cost)


@dataclass
class Track:
    """One person as the tracker knows them: their latest detection and where it was heading."""

    id: int
    first: int  # frame index of the first detection
    last: int  # frame index of the latest
    row: np.ndarray  # the latest detection (FACE_DIM)
    # (cx, cy, side) per frame; side's stays 0: a size is not extrapolated (see predicted)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    detections: int = 1

    def predicted(self, index: int, max_gap: int) -> np.ndarray:
        """(cx, cy, side) expected at frame `index`: the centre along its heading (for at most
        max_gap frames), the size as last seen (a face half hidden as it disappears is measured
        wrong; its size is not extrapolated)."""
        return self.row[:3] + self.velocity * min(index - self.last, max_gap)

    def extend(self, index: int, row: np.ndarray) -> None:
        step = (row[:3] - self.row[:3]) / max(index - self.last, 1)
        step[2] = 0.0
        # a smoothed heading: one jittery detection does not send the prediction astray
        self.velocity = step if self.detections == 1 else 0.5 * self.velocity + 0.5 * step
        self.row, self.last = row, index
        self.detections += 1


class Tracker:
    """Joins each frame's faces to the people seen before: one assignment a frame, of least total
    cost (scipy's linear_sum_assignment, the Hungarian method: with several people close together
    a greedy nearest match can give two people's faces to the wrong tracks, the optimal joint one
    does not), where the cost of a face for a person is how far it lies from where the person
    was heading, in face sides, plus how much its size differs (log ratio). A face no person can
    take starts a track. A person unseen for more than `max_gap` frames is gone.

    Faces under `min_face` px are left out; of more than `max_faces` in a frame the largest are
    followed (`most_in_frame` and `dropped` say how many were seen and left out at most)."""

    def __init__(
        self, max_faces: int = 8, min_face: float = 24.0, max_gap: int = 30, min_detections: int = MIN_DETECTIONS
    ):
        self.max_faces, self.min_face, self.max_gap = max_faces, min_face, max_gap
        # with the detector on every k-th frame, MIN_DETECTIONS frames' worth is fewer detections (the caller says)
        self.min_detections = min_detections
        self.tracks: dict[int, Track] = {}  # by id (1, 2, ... in order of appearance): all so far, unless forgotten
        self.started = 0  # tracks started: the last id given
        self.most_in_frame = 0
        self.dropped = 0
        self.frames = 0  # frames the detector looked at

    def live(self, index: int) -> list[Track]:
        return [t for t in self.tracks.values() if index - t.last <= self.max_gap]

    def near(self, index: int) -> list[np.ndarray]:
        """Where the detector looks first in the frames from `index` on: the latest face of each
        person still followed, the most recently seen first, at most max_faces of them."""
        live = sorted(self.live(index), key=lambda t: -t.last)
        return [t.row for t in live[: self.max_faces]]

    def update(self, index: int, rows: list[np.ndarray]) -> dict[int, np.ndarray]:
        """The faces detected in frame `index` -> {person id: their face}."""
        self.frames += 1
        rows = [r for r in rows if r[2] >= self.min_face]
        self.most_in_frame = max(self.most_in_frame, len(rows))
        if len(rows) > self.max_faces:
            self.dropped = max(self.dropped, len(rows) - self.max_faces)
            rows = sorted(rows, key=lambda r: -r[2])[: self.max_faces]
        live = self.live(index)
        taken: dict[int, np.ndarray] = {}
        free = set(range(len(rows)))
        if live and rows:
            # each person may also take no face, at cost MISS: a face is theirs only if it costs less
            cost = np.full((len(live), len(rows) + len(live)), GATED)
            cost[:, : len(rows)] = [[self.cost(t.predicted(index, self.max_gap), r) for r in rows] for t in live]
            cost[np.arange(len(live)), len(rows) + np.arange(len(live))] = MISS
            for t, j in zip(*least_cost_assignment(cost)):
                if j < len(rows) and cost[t, j] < GATED:
                    live[t].extend(index, rows[j])
                    taken[live[t].id] = rows[j]
                    free.discard(j)
        for j in sorted(free, key=lambda j: -rows[j][2]):  # new people, the largest first
            self.started += 1
            track = Track(self.started, index, index, rows[j])
            self.tracks[track.id] = track
            taken[track.id] = rows[j]
        return taken

    def forget_gone(self, index: int) -> None:
        """Drops the tracks gone by frame `index` (unseen for more than max_gap frames): a live
        stream may see people come and go for hours; an upload keeps them all for people()."""
        for pid in [pid for pid, t in self.tracks.items() if index - t.last > self.max_gap]:
            del self.tracks[pid]

    @staticmethod
    def cost(predicted: np.ndarray, row: np.ndarray) -> float:
        side = max(float(predicted[2]), float(row[2]), 1e-6)
        step = float(np.hypot(row[0] - predicted[0], row[1] - predicted[1])) / side
        growth = abs(float(np.log(max(row[2], 1e-6) / max(predicted[2], 1e-6))))
        if step > MAX_STEP or growth > np.log(MAX_GROWTH):
            return GATED  # not this person
        return step + growth

    def people(self) -> list[Track]:
        """The tracks that are people, in order of appearance: seen at least `min_detections` times
        (or in every frame looked at, in a video shorter than that)."""
        return [t for t in self.tracks.values() if t.detections >= min(self.min_detections, self.frames)]


@dataclass(frozen=True)
class PeopleFrame:
    index: int
    time_s: float
    gray: np.ndarray  # the full frame
    faces: dict[int, np.ndarray]  # person id -> smoothed FACE_DIM row, for each person in the frame


def track_people(
    frames: Iterable[Frame],
    detector,
    tracker: Tracker,
    radius: int,
    detect_every: int = 1,
    batch: int = 1,
    search_every: int = 1,
) -> Iterator[PeopleFrame]:
    """Frames with each person's smoothed face (box and landmarks), streamed with a lag of
    `radius` frames (plus up to `batch` - 1 frames waiting to be detected together).

    With detect_every = k > 1 the detector runs on every k-th frame only (radius >= k keeps every
    frame within reach of a detection). `detector` is a FaceDetector (its detect_people runs
    `batch` frames at once: one network call, on CUDA a real batch) or any function
    `(frames, near=[rows], look_for_new=bool) -> [[rows] per frame]`; `near` is the latest face
    of each person followed (Tracker.near), where the detector looks first. New people are looked
    for (the whole frame searched: three times a region's cost) in the first frame of a batch at
    least `search_every` frames after the last such search.
    """
    follow = PeopleStream(detector, tracker, radius, detect_every, batch, search_every)
    for frame in frames:
        yield from follow.push(frame)
    yield from follow.finish()


class PeopleStream:
    """track_people fed one frame at a time (a camera, not a file): `push(frame)` returns the
    frames whose faces are now known (those `radius` frames back, a batch at a time), `finish()`
    the rest once no frame will follow. The same steps in the same order as the generator."""

    def __init__(
        self, detector, tracker: Tracker, radius: int, detect_every: int = 1, batch: int = 1, search_every: int = 1
    ):
        self.detect = getattr(detector, "detect_people", detector)
        self.tracker, self.radius, self.detect_every, self.batch = tracker, radius, detect_every, batch
        self.search_every = search_every
        self.searched = -search_every  # the frame where new people were last looked for
        self.pending: deque[Frame] = deque()  # frames waiting for the detections after them
        self.window: deque[tuple[int, dict[int, np.ndarray]]] = deque(maxlen=2 * radius + 1)  # (index, {id: raw face})
        self.waiting: list[Frame] = []  # frames not detected yet

    def push(self, frame: Frame) -> list[PeopleFrame]:
        self.waiting.append(frame)
        return self._detect_waiting() if len(self.waiting) >= self.batch else []

    def finish(self) -> list[PeopleFrame]:
        out = self._detect_waiting()
        while self.pending:
            out.append(self._emit(self.pending.popleft()))
        return out

    def _emit(self, frame: Frame) -> PeopleFrame:
        radius = self.radius
        rows: dict[int, list[tuple[int, np.ndarray]]] = {}
        for i, faces in self.window:
            if abs(i - frame.index) <= radius:
                for person, row in faces.items():
                    rows.setdefault(person, []).append((i, row))
        # A person is in the frame if detected within +-radius frames on both sides of it (up to the
        # frames the detector skipped): a missed detection or two is bridged, but before a person
        # comes in and after they leave there is no face of theirs to crop.
        slack = self.detect_every - 1
        present = {p: r for p, r in rows.items() if r[0][0] <= frame.index + slack and r[-1][0] >= frame.index - slack}
        return PeopleFrame(
            frame.index,
            frame.time_s,
            frame.gray,
            {p: mean_box(np.stack([row for _, row in r])) for p, r in sorted(present.items())},
        )

    def _detect_waiting(self) -> list[PeopleFrame]:
        tracker, out = self.tracker, []
        todo = [f for f in self.waiting if f.index % self.detect_every == 0]
        found = {}
        if todo:
            near = tracker.near(todo[0].index)
            # New people are looked for while fewer than max_faces are followed (with RAMFER_MAX_FACES=1 the
            # detector does what it did before people were told apart, at the same cost).
            look = len(near) < tracker.max_faces and todo[0].index - self.searched >= self.search_every
            self.searched = todo[0].index if look else self.searched
            found = dict(
                zip((f.index for f in todo), self.detect([f.gray for f in todo], near=near, look_for_new=look))
            )
        for frame in self.waiting:
            faces = {}
            if frame.index in found:
                rows = [_full_row(r) for r in found[frame.index]]
                faces = tracker.update(frame.index, rows)
            self.window.append((frame.index, faces))
            self.pending.append(frame)
            if frame.index - self.pending[0].index >= self.radius:  # its last detection in reach has arrived
                out.append(self._emit(self.pending.popleft()))
        self.waiting.clear()
        return out


def _full_row(raw: np.ndarray) -> np.ndarray:
    """A detection as a FACE_DIM row: a bare box (3 values) leaves the landmarks NaN."""
    row = np.full(FACE_DIM, np.nan, np.float32)
    row[: len(raw)] = raw
    return row
