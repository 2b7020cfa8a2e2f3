"""Each person's part of the result, read from their scored clips (service/scoring.py): answer,
timeline, peak and pictures, built as the result's models (service/schemas.py) with the service's
decision rule (service/decision.py), the same for every person."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service import schemas
from service.analysis import FrameTimes, Person
from service.decision import decide_clips
from service.predictor import Predictor
from service.render import render_attention, render_face
from service.settings import Settings
from service.stopwatch import Stopwatch
from training.clips import label_runs, merge_short_runs


@dataclass
class Judge:
    """Reads each person's answer, timeline, peak and pictures from their scored clips."""

    predictor: Predictor
    settings: Settings
    watch: Stopwatch
    grid: list[dict]  # the video's clips: index, frames, times
    clips: np.ndarray  # (n_clips, T) frame indices
    times: FrameTimes
    fps: float
    out_dir: Path | None
    decided: dict[int, tuple[int, np.ndarray, dict[int, int], float]] = field(
        default_factory=dict
    )  # person id -> decide()

    def decide(self, person: Person) -> tuple[int, np.ndarray, dict[int, int], float]:
        """(winner, votes, {clip: decided label}, confidence) of a scored person (decide_clips)."""
        if person.id not in self.decided:
            face_clips = sorted(person.scorer.probs)
            with self.watch.stage("vote"):
                winner, votes, decided, confidence = decide_clips(
                    np.stack([person.scorer.probs[c] for c in face_clips]), self.predictor, self.settings
                )
            self.decided[person.id] = winner, votes, dict(zip(face_clips, decided)), confidence
        return self.decided[person.id]

    def timeline(self, person: Person, numbers) -> tuple[list[schemas.Clip], list[schemas.Segment]]:
        """The person's clips (of `numbers`, the video's clip indices) and their segments. Segments tile
        the clips: clips overlap, so one ends where the next run's first clip starts. They are read from
        the same evidence as the answer (smoothed labels, no run shorter than the vote's minimum),
        not from each clip's own label."""
        classes, scorer = self.predictor.classes, person.scorer
        decided = self.decide(person)[2]
        rows = []
        for c in numbers:
            face = c in scorer.probs
            rows.append(
                schemas.Clip(
                    **self.grid[c],
                    label=classes[int(scorer.probs[c].argmax())] if face else None,
                    probabilities=by_class(classes, scorer.reported[c]) if face else None,
                    face=face,
                )
            )
        runs = label_runs(
            merge_short_runs(
                [classes[decided[r.index]] if r.index in decided else None for r in rows], self.settings.vote_min_clips
            )
        )
        segments = [
            schemas.Segment(
                label=label,
                start_s=rows[first].start_s,
                end_s=rows[runs[k + 1][1]].start_s if k + 1 < len(runs) else rows[last].end_s,
                clips=last - first + 1,
            )
            for k, (label, first, last) in enumerate(runs)
        ]
        return rows, segments

    def person(self, person: Person) -> schemas.Person:
        """One entry of the result's `people`: when and where the person was seen, and, if a whole
        clip of them was, their expression, timeline, peak and attention maps."""
        classes, scorer, times = self.predictor.classes, person.scorer, self.times
        first, last = min(person.crops), max(person.crops)
        seen = {
            "id": person.id,
            "scored": bool(scorer.probs),
            "first_s": round(times[first], 3),
            "last_s": round(times[last] + 1 / self.fps, 3),
            "frames": len(person.crops),
            "thumbnail": self.thumbnail(person),
            "track": track_of(person.boxes, times),
        }
        if not scorer.probs:
            return schemas.Person(
                **seen,
                box_at_peak=None,
                expression=None,
                confidence=None,
                votes=None,
                probabilities=None,
                clips=[],
                segments=[],
                peak=None,
                attention_maps=[],
            )
        winner, votes, _, confidence = self.decide(person)
        _, peak_clip, peak_displays, peak_maps = scorer.best[winner]  # the clip that showed it most
        peak_frame = int(self.clips[peak_clip][-1])  # the network decides at a clip's last frame
        maps = self.attention_maps(person, winner, self.clips[peak_clip], peak_displays, peak_maps)
        clips, segments = self.timeline(
            person, [c for c, idx in enumerate(self.clips) if idx[-1] >= first and idx[0] <= last]
        )
        return schemas.Person(
            **seen,
            expression=classes[winner],
            confidence=confidence,
            votes={c: int(v) for c, v in zip(classes, votes)},
            probabilities=by_class(classes, np.mean([scorer.reported[c] for c in sorted(scorer.probs)], axis=0)),
            clips=clips,
            segments=segments,
            peak=schemas.Peak(clip=int(peak_clip), frame=peak_frame, time_s=round(times[peak_frame], 3)),
            box_at_peak=box_of(person.boxes[peak_frame]),
            attention_maps=maps,
        )

    def thumbnail(self, person: Person) -> schemas.Image | None:
        """The person's face where it was seen largest, as a PNG in out_dir (none without one)."""
        if self.out_dir is None or person.thumbnail is None:
            return None
        with self.watch.stage("render"):
            _, frame, image = person.thumbnail
            return render_face(Path(self.out_dir), f"person{person.id}_face", image, frame, self.times[frame])

    def attention_maps(
        self, person: Person, winner: int, frames: np.ndarray, displays: list, maps: np.ndarray | None
    ) -> list[schemas.AttentionMap]:
        """The pictures of the person's peak clip (service/render.py), as PNGs in out_dir: where RAM
        looked and where the answer came from (none without out_dir or attention)."""
        if self.out_dir is None or maps is None:
            return []
        with self.watch.stage("render"):
            peak_frames = [int(i) for i in frames]
            evidence = self.predictor.evidence(np.stack([person.crops[i] for i in peak_frames]), winner)
            return render_attention(
                Path(self.out_dir),
                np.stack(displays),
                maps,
                peak_frames,
                [self.times[i] for i in peak_frames],
                evidence,
                prefix=f"person{person.id}_",
            )


def box_of(box: np.ndarray) -> schemas.Box:
    """A face's square box (cx, cy, side, ...) as a result shows it: left, top, width, height in frame pixels."""
    cx, cy, side = (float(v) for v in box[:3])
    return schemas.Box(
        x=round(cx - side / 2, 1), y=round(cy - side / 2, 1), width=round(side, 1), height=round(side, 1)
    )


def track_of(boxes: dict[int, np.ndarray], times: FrameTimes) -> schemas.Track:
    """A person's face box on every frame they were seen in, as parallel arrays (a few bytes a frame
    in JSON, where a list of objects would repeat every key): time (s) and left, top, width, height
    in the displayed frame's pixels, as box_of gives one box."""
    frames = sorted(boxes)
    if not frames:
        return schemas.Track(t=[], x=[], y=[], w=[], h=[])
    cx, cy, side = np.array([boxes[i][:3] for i in frames], dtype=np.float64).T
    left, top, side = (np.round(v, 1).tolist() for v in (cx - side / 2, cy - side / 2, side))
    return schemas.Track(t=[round(times[i], 3) for i in frames], x=left, y=top, w=side, h=side)


def by_class(classes: list[str], p: np.ndarray) -> dict[str, float]:
    """Per-class probabilities as a result shows them, to 4 decimals."""
    return {c: round(float(v), 4) for c, v in zip(classes, p)}
