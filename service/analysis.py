"""The steps between frames and scored clips, shared by uploads and live sessions: every face
tracked as a person, cropped as training crops it, and each person's clips scored as they complete.

Everything between the frames and the model is the training code itself (training.faces,
training.tracks, training.clips), so the served model sees what it learned from. What is kept per
frame is its 48 px crop; full frames and display crops live only as long as a pending clip needs
them, so memory does not grow with the video's resolution, and only by ~2 KB a frame with its length.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from service.predictor import Predictor
from service.scoring import ClipScorer, PendingClip
from service.settings import Settings
from service.stopwatch import Stopwatch
from training.clips import CLIP_LENGTH, CLIP_STRIDE, clip_indices, regular_clip
from training.faces import crop_frame
from training.tracks import MIN_DETECTIONS, PeopleFrame, PeopleStream, Tracker
from training.video import Frame


class FrameTimes:
    """Capture times by frame index (0, 1, ...), appended as frames are tracked. An upload keeps
    them all; a live session, which may last hours, forgets those before the frames a clip still
    to come can use (`forget_before`), so it holds a few dozen whatever its length."""

    def __init__(self) -> None:
        self.first = 0  # the index of kept[0]
        self.kept: deque[float] = deque()

    def append(self, t: float) -> None:
        self.kept.append(t)

    def __len__(self) -> int:  # frames tracked so far, forgotten ones included
        return self.first + len(self.kept)

    def __getitem__(self, i: int) -> float:
        if i < 0:
            return self.kept[i]
        if i < self.first:
            raise IndexError(f"frame {i}'s time was forgotten (kept from frame {self.first})")
        return self.kept[i - self.first]

    def forget_before(self, i: int) -> None:
        while self.kept and self.first < i:
            self.kept.popleft()
            self.first += 1


@dataclass
class Person:
    """One tracked person's evidence as the video streams: the crops of the frames they are in
    (~2 KB a frame), their box in each, the display crops a pending clip may still draw, their
    clips' scores, and the picture of their face where it was seen largest."""

    id: int
    scorer: ClipScorer  # reads the crops from scorer.crops (frame index -> the network's crop)
    boxes: dict[int, np.ndarray] = field(default_factory=dict)  # frame index -> (cx, cy, side) in frame pixels
    displays: dict[int, np.ndarray] = field(default_factory=dict)  # the last CLIP_LENGTH frames' display crops
    thumbnail: tuple[float, int, np.ndarray] | None = None  # (side, frame index, display crop)

    @property
    def crops(self) -> dict[int, np.ndarray]:
        return self.scorer.crops

    def add(self, index: int, gray: np.ndarray, face: np.ndarray, crop, display_size: int) -> None:
        self.crops[index] = crop_frame(gray, face, crop)
        self.displays[index] = crop_frame(gray, face, crop, display_size)
        self.boxes[index] = face[:3]
        if self.thumbnail is None or face[2] > self.thumbnail[0]:
            self.thumbnail = (float(face[2]), index, self.displays[index])

    def shows(self, frames: np.ndarray) -> bool:
        return all(int(i) in self.crops for i in frames)


class Analysis:
    """The steps between frames and scored clips, fed one frame at a time: uploads push a file's
    decoded frames, live sessions a camera's. `push(frame)` tracks every face, crops it, and
    scores each person's clips (8 frames, stride 2) as they complete; `finish()` adds the clip
    aligned to the end. With `eager` each clip is scored as soon as it is complete (a live answer
    cannot wait for a batch of 32); without, a batch at a time.

    `fps` is the frame rate the tracker's gap (track_gap_s) is counted in; `detect_batch` frames
    are detected at once (one network call)."""

    def __init__(
        self,
        predictor: Predictor,
        settings: Settings,
        fps: float,
        watch: Stopwatch,
        detect_batch: int,
        eager: bool = False,
    ):
        self.predictor, self.settings, self.watch, self.eager = predictor, settings, watch, eager
        self.tracker = Tracker(
            max_faces=settings.max_faces,
            min_face=settings.min_face_px,
            max_gap=max(1, round(settings.track_gap_s * (fps or 30.0))),
            # a face in MIN_DETECTIONS frames is a person, however many of them the detector looked at
            min_detections=-(-MIN_DETECTIONS // settings.detect_every),
        )
        self.follow = PeopleStream(
            watch.wrap("detect", predictor.detector.detect_people),
            self.tracker,
            radius=max(predictor.crop.smooth_radius, settings.detect_every),
            detect_every=settings.detect_every,
            batch=detect_batch,
            # new people are looked for about once a second (docs/performance.md: what it costs one face)
            search_every=max(1, round(fps or 30.0)),
        )
        self.people: dict[int, Person] = {}
        self.times = FrameTimes()  # of the frames tracked so far
        self.streamed = 0  # clips submitted as they completed (clip k: frames 2k .. 2k + 7)

    def push(self, frame: Frame) -> None:
        self._take(self.follow.push(frame))

    def finish(self) -> np.ndarray:
        """The video's clips (clip_indices of its length), every one of them scored."""
        self._take(self.follow.finish())
        clips = clip_indices(len(self.times))  # the shared definition; the streamed clips are its first rows
        assert not self.streamed or np.array_equal(clips[self.streamed - 1], regular_clip(self.streamed - 1)), (
            "streamed clips differ from clip_indices"
        )
        for number in range(self.streamed, len(clips)):  # the clip aligned to the end, or the padded short one
            self._submit(number, clips[number])
        for person in self.people.values():
            person.scorer.flush()
        return clips

    def _submit(self, number: int, frame_idx: np.ndarray) -> None:
        self.streamed = max(self.streamed, number + 1)
        for person in self.people.values():
            if person.shows(frame_idx):
                person.scorer.add(PendingClip(number, frame_idx, [person.displays[int(i)] for i in frame_idx]))

    def _take(self, seen_frames: list[PeopleFrame]) -> None:
        crop, watch = self.predictor.crop, self.watch
        for seen in seen_frames:
            with watch.stage("crop"):
                for pid, face in seen.faces.items():
                    if pid not in self.people:
                        self.people[pid] = Person(
                            pid, ClipScorer(self.predictor, watch, {}, scored=[] if self.eager else None)
                        )
                    self.people[pid].add(seen.index, seen.gray, face, crop, self.settings.display_size)
            self.times.append(seen.time_s)
            n = len(self.times)
            # A regular clip (start 0, 2, 4, ...) is complete once its last frame is here.
            if n >= CLIP_LENGTH and (n - CLIP_LENGTH) % CLIP_STRIDE == 0:
                number = (n - CLIP_LENGTH) // CLIP_STRIDE
                self._submit(number, regular_clip(number))
            for person in self.people.values():  # only the last clip's frames can still be needed
                for i in [i for i in person.displays if i < n - CLIP_LENGTH]:
                    del person.displays[i]
        if self.eager:
            for person in self.people.values():
                person.scorer.flush()
