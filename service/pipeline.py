"""One video in, one result out: the function the worker and `python -m service predict` both call.

    video -> frames -> faces -> crops -> clips -> model -> vote -> result (+ attention PNGs)

Everything between the file and the model is the training code itself (training.video,
training.faces, training.clips), so the served model sees what it learned from. The video is
streamed: frames are decoded, tracked and cropped one at a time, and clips go through the model
in batches as soon as their 8 frames exist. What is kept per frame is its 48 px crop; full frames
and display crops live only as long as a pending clip needs them, so memory does not grow with
the video's resolution, and only by ~2 KB a frame with its length (capped by max_frames).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.render import render_attention, render_face
from service.settings import Settings
from training.clips import (
    CLIP_LENGTH,
    CLIP_STRIDE,
    clip_indices,
    decide_video,
    label_runs,
    merge_short_runs,
    regular_clip,
)
from training.faces import FaceDetector, crop_frame
from training.tracks import PeopleFrame, PeopleStream, Tracker
from training.video import Frame, VideoError, VideoInfo, probe_video, read_frames

# The prior for neutral of checkpoints whose config.json records no decision rule: the one the service
# used for them, chosen on rendered held-out people (docs/real-faces.md, "A prior for neutral")
LEGACY_NEUTRAL_BIAS = 2.5

log = logging.getLogger(__name__)


def check_video(path: str | Path, settings: Settings) -> VideoInfo:
    """The container's claims checked against the limits, before a frame is decoded."""
    info = probe_video(path)
    if info.width * info.height > settings.max_pixels:
        raise VideoError(
            "resolution_too_large",
            f"{info.width}x{info.height} is larger than this service accepts ({settings.max_pixels:,} pixels per frame).",
        )
    if info.duration_s > settings.max_duration_s:
        raise VideoError(
            "video_too_long", f"The video lasts {info.duration_s:.0f} s; this service accepts up to {settings.max_duration_s:.0f} s."
        )
    return info


class Predictor:
    """The checkpoint, loaded once per process, and the face detector that goes with it."""

    def __init__(self, model_dir: str | Path, device: str | None = None, batch_size: int = 32, bf16: bool = False,
                 flip_average: bool = False, runtime: str = "auto"):
        import torch

        from training.checkpoint import checkpoint_folder, crop_config, load_checkpoint
        from training.device import bf16_ok, pick_device
        from training.runtime import BF16_CLIPS_FROM, FOLDER, network_runtime

        self.torch = torch
        self.device = pick_device(device)
        self.model, self.config = load_checkpoint(model_dir, self.device)
        self.bf16 = bf16 and bf16_ok(self.device)
        # What runs the network (training/runtime.py): ONNX Runtime on the CPU where it can (the
        # checkpoint's onnx/ folder, or an export made once into the cache), else the module itself.
        # auto leaves batches of clips to PyTorch's recurrence where bf16 autocast runs natively: there
        # it is the faster on a batch (BF16_CLIPS_FROM); the per-frame stage, and a few clips at a
        # time, are faster on ONNX Runtime (docs/performance.md, "The CPU runtime").
        exports = (checkpoint_folder(model_dir) / FOLDER,)
        self.network = network_runtime(self.model, self.config, exports, runtime, self.device,
                                       torch_clips_from=BF16_CLIPS_FROM if runtime == "auto" and self.bf16 else None)
        self.runtime: str = getattr(self.network, "runtime", "torch")  # what runs the network, in words
        self.bf16 = self.bf16 and self.runtime != "onnx"  # ONNX Runtime runs the fp32 weights; autocast reaches the torch part
        self.crop = crop_config(self.config)
        self.classes: list[str] = self.config["classes"]
        self.sha256: str = self.config["weights_sha256"]
        self.variant: str = self.config["model"]["variant"]
        # Calibration (training/calibration.py): the reported probabilities are the network's at this
        # temperature; the decision reads the network's own, on which its rule was chosen.
        self.temperature: float = float((self.config.get("calibration") or {}).get("temperature", 1.0))
        # The prior for neutral its decision rule was chosen with (NEUTRAL_BIAS overrides it)
        self.neutral_bias: float = float((self.config.get("decision") or {}).get("neutral_bias", LEGACY_NEUTRAL_BIAS))
        self.batch_size = batch_size
        # Each clip also seen in a mirror (training flips half its clips, so the mirror is a
        # face it knows); the two probabilities are averaged. Twice the network's work.
        self.flip_average = flip_average
        # BlazeFace on the same device as the model; frames are detected detect_batch at a time
        self.detector = FaceDetector(device=str(self.device), runtime=runtime, export_folders=exports)
        self.detect_batch = 16

    def warm_up(self) -> None:
        self.predict(np.zeros((1, CLIP_LENGTH, self.crop.size, self.crop.size), np.uint8))

    def features(self, crops: np.ndarray):
        """(N, S, S) uint8 frames -> the network's per-frame features (N, P, h, w), on the device;
        (N, 2, P, h, w) with flip_average: each frame's, then its mirror image's."""
        torch = self.torch
        x = torch.from_numpy(crops)[:, None].to(self.device)  # (N, 1, S, S)
        if self.flip_average:
            x = torch.stack([x, x.flip(-1)], 1).flatten(0, 1)  # (2N, 1, S, S)
        with torch.inference_mode(), torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            f = self.network.frame_features(x)
        return f.unflatten(0, (-1, 2)) if self.flip_average else f

    def score(self, feats) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, T, P, h, w) clip features ((B, T, 2, P, h, w) with flip_average) -> class probabilities (B, K),
        attention maps (B, T, h', w') or None. Mirrored clips only vote: the maps are the clip's as shown."""
        torch = self.torch
        B = feats.shape[0]
        if self.flip_average:
            feats = feats.transpose(1, 2).flatten(0, 1)  # (2B, T, P, h, w): clip, its mirror, next clip, ...
        with torch.inference_mode(), torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            out = self.network.forward_features(feats)
            probs = out.logits.float().softmax(-1)
            maps = out.attention
            if self.flip_average:
                probs = probs.unflatten(0, (B, 2)).mean(1)
                maps = None if maps is None else maps.unflatten(0, (B, 2))[:, 0]
        return probs.cpu().numpy(), None if maps is None else maps.float().cpu().numpy()

    def calibrated(self, probabilities: np.ndarray) -> np.ndarray:
        """The network's clip probabilities as reported: at the checkpoint's fitted temperature."""
        from training.calibration import apply_temperature

        return apply_temperature(probabilities, self.temperature)

    def predict(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, T, S, S) uint8 clips -> probabilities, maps (each clip's frames encoded on their own)."""
        B, T = clips.shape[:2]
        return self.score(self.features(clips.reshape(B * T, *clips.shape[2:])).unflatten(0, (B, T)))


class Stopwatch:
    """Milliseconds spent per stage, summed over the interleaved streaming loop."""

    def __init__(self):
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + 1000 * (time.perf_counter() - start)

    def iterate(self, name: str, items: Iterable) -> Iterator:
        it = iter(items)
        while True:
            with self.stage(name):
                try:
                    item = next(it)
                except StopIteration:
                    return
            yield item

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            with self.stage(name):
                return fn(*args, **kwargs)

        return timed


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
class PendingClip:
    number: int
    frames: np.ndarray  # (T,) frame indices
    displays: list  # T display crops (D, D)


@dataclass
class ClipScorer:
    """Scores one person's clips in batches as they arrive and remembers, for each class, the
    clip that showed it most strongly, with what is needed to draw that clip's attention maps.

    A frame's features (the network's per-frame part) are computed once and shared by the up
    to 4 overlapping clips it belongs to; they are dropped when no later clip can need them."""

    predictor: Predictor
    watch: Stopwatch
    crops: dict  # the person's 48 px crops, by frame index
    probs: dict[int, np.ndarray] = field(default_factory=dict)  # the network's, which the decision reads
    reported: dict[int, np.ndarray] = field(default_factory=dict)  # the same at the checkpoint's temperature
    best: dict[int, tuple[float, int, list, np.ndarray | None]] = field(default_factory=dict)
    pending: list[PendingClip] = field(default_factory=list)
    feats: dict = field(default_factory=dict)  # frame index -> features tensor (P, h, w)
    # When a list: each scored clip is appended as (number, frame indices, probabilities, reported, maps or None),
    # for a live session to send on; uploads leave it None and keep only the summaries above.
    scored: list | None = None

    def add(self, clip: PendingClip) -> None:
        self.pending.append(clip)
        if len(self.pending) >= self.predictor.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        with self.watch.stage("infer"):
            needed = sorted({int(i) for c in self.pending for i in c.frames} - self.feats.keys())
            for b in range(0, len(needed), 4 * self.predictor.batch_size):
                chunk = needed[b : b + 4 * self.predictor.batch_size]
                for i, f in zip(chunk, self.predictor.features(np.stack([self.crops[i] for i in chunk]))):
                    self.feats[i] = f
            stacked = self.predictor.torch.stack([self.predictor.torch.stack([self.feats[int(i)] for i in c.frames]) for c in self.pending])
            probs, maps = self.predictor.score(stacked)
        shown = self.predictor.calibrated(probs)  # the peak is the clip whose reported probability is highest
        for j, clip in enumerate(self.pending):
            self.probs[clip.number] = probs[j]
            self.reported[clip.number] = shown[j]
            if self.scored is not None:
                self.scored.append((clip.number, clip.frames, probs[j], shown[j], None if maps is None else maps[j]))
            for k in range(probs.shape[1]):
                if k not in self.best or shown[j, k] > self.best[k][0]:
                    self.best[k] = (float(shown[j, k]), clip.number, clip.displays, None if maps is None else maps[j])
        # later clips start after the last one scored (the end-aligned clip at most 1 frame after)
        keep_from = int(self.pending[-1].frames[0]) + 1
        self.feats = {i: f for i, f in self.feats.items() if i >= keep_from}
        self.pending = []


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

    def __init__(self, predictor: Predictor, settings: Settings, fps: float, watch: Stopwatch, detect_batch: int,
                 eager: bool = False):
        self.predictor, self.settings, self.watch, self.eager = predictor, settings, watch, eager
        self.tracker = Tracker(max_faces=settings.max_faces, min_face=settings.min_face_px,
                               max_gap=max(1, round(settings.track_gap_s * (fps or 30.0))))
        self.follow = PeopleStream(watch.wrap("detect", predictor.detector.detect_people), self.tracker,
                                   radius=max(predictor.crop.smooth_radius, settings.detect_every),
                                   detect_every=settings.detect_every, batch=detect_batch,
                                   # new people are looked for about once a second (docs/performance.md: what it costs one face)
                                   search_every=max(1, round(fps or 30.0)))
        self.people: dict[int, Person] = {}
        self.times = FrameTimes()  # of the frames tracked so far
        self.streamed = 0  # clips submitted as they completed (clip k: frames 2k .. 2k + 7)

    def push(self, frame: Frame) -> None:
        self._take(self.follow.push(frame))

    def finish(self) -> np.ndarray:
        """The video's clips (clip_indices of its length), every one of them scored."""
        self._take(self.follow.finish())
        clips = clip_indices(len(self.times))  # the shared definition; the streamed clips are its first rows
        assert not self.streamed or np.array_equal(clips[self.streamed - 1], regular_clip(self.streamed - 1)), \
            "streamed clips differ from clip_indices"
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
                        self.people[pid] = Person(pid, ClipScorer(self.predictor, watch, {}, scored=[] if self.eager else None))
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


def analyse_video(
    path: str | Path,
    predictor: Predictor,
    settings: Settings,
    out_dir: Path | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> dict:
    """The full result of one video (see contract.md): every person in it, and at the top level
    the main one (seen in the most frames). Attention and face PNGs go to `out_dir` when given.
    Raises VideoError for a video that cannot be used (unreadable, too big, no face)."""
    watch = Stopwatch()
    start = time.perf_counter()
    info = check_video(path, settings)
    analysis = Analysis(predictor, settings, info.fps, watch, predictor.detect_batch)
    last_report = 0.0
    first: Frame | None = None  # its size and orientation are the video's as displayed
    for frame in watch.iterate("decode", read_frames(path, max_frames=settings.max_frames)):
        if first is None:
            first = frame
        analysis.push(frame)
        if on_progress and time.perf_counter() - last_report > 0.5:
            last_report = time.perf_counter()
            n = len(analysis.times)
            total = min(info.frames, settings.max_frames) if info.frames else None
            on_progress({"stage": "analysing", "frames_done": n, "frames_total": total,
                         "percent": round(100 * min(n / total, 1.0), 1) if total else None})

    clips = analysis.finish()
    people, times, tracker = analysis.people, analysis.times, analysis.tracker
    n = len(times)
    # people in order of how long each was seen; the detector's noise (a few detections) is no one
    seen_people = sorted((people[t.id] for t in tracker.people() if t.id in people), key=lambda p: (-len(p.crops), p.id))
    scored = [p for p in seen_people if p.scorer.probs]
    if not scored:
        if seen_people:
            raise VideoError("no_face", f"Faces were seen in the video, but none for a whole clip ({CLIP_LENGTH} frames; "
                                        f"{n} frames looked at).")
        raise VideoError("no_face", f"No face was found in the video ({n} frames looked at).")

    fps = info.fps
    grid = [{"index": c, "start_frame": int(idx[0]), "end_frame": int(idx[-1]), "start_s": round(times[int(idx[0])], 3),
             "end_s": round(times[int(idx[-1])] + 1 / fps, 3)} for c, idx in enumerate(clips)]
    judge = Judge(predictor, settings, watch, grid, clips, times, fps, out_dir)
    entries = [judge.person(p) for p in seen_people]
    main = next(e for e, p in zip(entries, seen_people) if p is scored[0])
    full = judge.timeline(scored[0], range(len(clips)))
    # The top level's maps are the main person's, also under the names results had before people
    # were told apart ("peak", "peak_clip"), so links that clients build by name keep working.
    top_maps = [{**m, "name": m["name"].removeprefix(f"person{main['id']}_")} for m in main["attention_maps"]]
    for m, top in zip(main["attention_maps"], top_maps):
        shutil.copyfile(Path(out_dir) / f"{m['name']}.png", Path(out_dir) / f"{top['name']}.png")
    watch.ms["total"] = 1000 * (time.perf_counter() - start)
    return {
        **{k: main[k] for k in ("expression", "confidence", "votes", "probabilities")},
        "clips": full["clips"],
        "segments": full["segments"],
        "peak": main["peak"],
        "attention_maps": top_maps,
        "video": {"frames": n, "fps": round(fps, 3), "duration_s": round(times[-1] + 1 / fps, 3),
                  "width": first.gray.shape[1], "height": first.gray.shape[0],
                  "rotation": first.orientation.rotation, "mirrored": first.orientation.mirrored},
        "faces": {"frames_with_face": main["frames"], "frames": n, "people": len(entries),
                  "most_in_frame": tracker.most_in_frame, "dropped": tracker.dropped, "max_faces": settings.max_faces},
        "people": entries,
        "model": {"variant": predictor.variant, "sha256": predictor.sha256, "flip_average": predictor.flip_average,
                  "temperature": predictor.temperature},
        "decision": {"smooth_clips": settings.vote_smooth_clips, "min_clips": settings.vote_min_clips,
                     "neutral_bias": neutral_bias(predictor, settings)},
        "timings_ms": {k: round(v, 1) for k, v in watch.ms.items()},
    }


@dataclass
class Judge:
    """Reads each person's answer, timeline, peak and pictures from their scored clips: the
    service's decision rule (training.clips.decide_video), the same for every person."""

    predictor: Predictor
    settings: Settings
    watch: Stopwatch
    grid: list[dict]  # the video's clips: index, frames, times
    clips: np.ndarray  # (n_clips, T) frame indices
    times: FrameTimes
    fps: float
    out_dir: Path | None
    decided: dict[int, tuple[int, np.ndarray, dict[int, int], float]] = field(default_factory=dict)  # person id -> decide()

    def decide(self, person: Person) -> tuple[int, np.ndarray, dict[int, int], float]:
        """(winner, votes, {clip: decided label}, confidence) of a scored person (decide_clips)."""
        if person.id not in self.decided:
            face_clips = sorted(person.scorer.probs)
            with self.watch.stage("vote"):
                winner, votes, decided, confidence = decide_clips(
                    np.stack([person.scorer.probs[c] for c in face_clips]), self.predictor, self.settings)
            self.decided[person.id] = winner, votes, dict(zip(face_clips, decided)), confidence
        return self.decided[person.id]

    def timeline(self, person: Person, numbers) -> dict:
        """The person's clips (of `numbers`, the video's clip indices) and their segments. Segments tile
        the clips: clips overlap, so one ends where the next run's first clip starts. They are read from
        the same evidence as the answer (smoothed labels, no run shorter than the vote's minimum),
        not from each clip's own label."""
        classes, scorer = self.predictor.classes, person.scorer
        decided = self.decide(person)[2]
        rows = []
        for c in numbers:
            face = c in scorer.probs
            rows.append({**self.grid[c], "label": classes[int(scorer.probs[c].argmax())] if face else None,
                         "probabilities": by_class(classes, scorer.reported[c]) if face else None, "face": face})
        runs = label_runs(merge_short_runs([classes[decided[r["index"]]] if r["index"] in decided else None for r in rows],
                                           self.settings.vote_min_clips))
        segments = [{
            "label": label,
            "start_s": rows[first]["start_s"],
            "end_s": rows[runs[k + 1][1]]["start_s"] if k + 1 < len(runs) else rows[last]["end_s"],
            "clips": last - first + 1,
        } for k, (label, first, last) in enumerate(runs)]
        return {"clips": rows, "segments": segments}

    def person(self, person: Person) -> dict:
        """One entry of the result's `people`: when and where the person was seen, and, if a whole
        clip of them was, their expression, timeline, peak and attention maps."""
        classes, scorer, times = self.predictor.classes, person.scorer, self.times
        first, last = min(person.crops), max(person.crops)
        entry = {"id": person.id, "scored": bool(scorer.probs), "first_s": round(times[first], 3),
                 "last_s": round(times[last] + 1 / self.fps, 3),
                 "frames": len(person.crops), "box_at_peak": None, "expression": None, "confidence": None, "votes": None,
                 "probabilities": None, "clips": [], "segments": [], "peak": None, "attention_maps": [], "thumbnail": None,
                 "track": track_of(person.boxes, times)}
        if self.out_dir is not None and person.thumbnail is not None:
            with self.watch.stage("render"):
                _, frame, image = person.thumbnail
                entry["thumbnail"] = render_face(Path(self.out_dir), f"person{person.id}_face", image, frame, times[frame])
        if not scorer.probs:
            return entry
        winner, votes, _, confidence = self.decide(person)
        _, peak_clip, peak_displays, peak_maps = scorer.best[winner]  # the clip that showed it most
        peak_frame = int(self.clips[peak_clip][-1])  # the network decides at a clip's last frame
        if self.out_dir is not None and peak_maps is not None:
            with self.watch.stage("render"):
                peak_frames = [int(i) for i in self.clips[peak_clip]]
                entry["attention_maps"] = render_attention(Path(self.out_dir), np.stack(peak_displays), peak_maps, peak_frames,
                                                           [times[i] for i in peak_frames], prefix=f"person{person.id}_")
        spanned = [c for c, idx in enumerate(self.clips) if idx[-1] >= first and idx[0] <= last]
        entry.update({
            "expression": classes[winner],
            "confidence": confidence,
            "votes": {c: int(v) for c, v in zip(classes, votes)},
            "probabilities": by_class(classes, np.mean([scorer.reported[c] for c in sorted(scorer.probs)], axis=0)),
            **self.timeline(person, spanned),
            "peak": {"clip": int(peak_clip), "frame": peak_frame, "time_s": round(times[peak_frame], 3)},
            "box_at_peak": box_of(person.boxes[peak_frame]),
        })
        return entry


def neutral_class(classes: list[str]) -> int | None:
    """The class that abstains in the vote (training.clips.majority_vote): neutral, where the model has it."""
    return classes.index("neutral") if "neutral" in classes else None


def neutral_bias(predictor: Predictor, settings: Settings) -> float:
    """The prior for neutral the decision uses: NEUTRAL_BIAS where it is set, else the checkpoint's own
    (0 for a model without a neutral class)."""
    if neutral_class(predictor.classes) is None:
        return 0.0
    return predictor.neutral_bias if settings.neutral_bias is None else settings.neutral_bias


def decide_clips(probabilities: np.ndarray, predictor: Predictor, settings: Settings) -> tuple[int, np.ndarray, np.ndarray, float]:
    """The service's decision rule on clips' network probabilities (N, K), for uploads and live
    sessions alike: training.clips.decide_video with the service's settings, neutral abstaining.
    Returns the winner, the votes, each clip's decided label and the confidence: the winner's share
    of the clips that voted (neutral clips stand aside when an expression wins)."""
    classes = predictor.classes
    neutral = neutral_class(classes)
    winner, votes, labels = decide_video(probabilities, len(classes), abstain=neutral, radius=settings.vote_smooth_clips,
                                         min_run=settings.vote_min_clips, abstain_bias=neutral_bias(predictor, settings))
    voting = int(votes.sum() if neutral is None or winner == neutral else votes.sum() - votes[neutral])
    return winner, votes, labels, round(float(votes[winner] / max(voting, 1)), 4)


def box_of(box: np.ndarray) -> dict[str, float]:
    """A face's square box (cx, cy, side, ...) as a result shows it: left, top, width, height in frame pixels."""
    cx, cy, side = (float(v) for v in box[:3])
    return {"x": round(cx - side / 2, 1), "y": round(cy - side / 2, 1), "width": round(side, 1), "height": round(side, 1)}


def track_of(boxes: dict[int, np.ndarray], times: FrameTimes) -> dict[str, list[float]]:
    """A person's face box on every frame they were seen in, as parallel arrays (a few bytes a frame
    in JSON, where a list of objects would repeat every key): time (s) and left, top, width, height
    in the displayed frame's pixels, as box_of gives one box."""
    frames = sorted(boxes)
    if not frames:
        return {"t": [], "x": [], "y": [], "w": [], "h": []}
    cx, cy, side = np.array([boxes[i][:3] for i in frames], dtype=np.float64).T
    left, top, side = (np.round(v, 1).tolist() for v in (cx - side / 2, cy - side / 2, side))
    return {"t": [round(times[i], 3) for i in frames], "x": left, "y": top, "w": side, "h": side}


def by_class(classes: list[str], p: np.ndarray) -> dict[str, float]:
    """Per-class probabilities as a result shows them, to 4 decimals."""
    return {c: round(float(v), 4) for c, v in zip(classes, p)}
