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
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service.render import render_attention
from service.settings import Settings
from training.clips import CLIP_LENGTH, CLIP_STRIDE, clip_indices, decide_video, label_runs, merge_short_runs
from training.faces import FaceDetector, crop_frame, track_faces
from training.video import VideoError, VideoInfo, probe_video, read_frames

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
                 flip_average: bool = False):
        import torch

        from training.checkpoint import crop_config, load_checkpoint
        from training.device import bf16_ok, pick_device

        self.torch = torch
        self.device = pick_device(device)
        self.model, self.config = load_checkpoint(model_dir, self.device)
        self.crop = crop_config(self.config)
        self.classes: list[str] = self.config["classes"]
        self.sha256: str = self.config["weights_sha256"]
        self.variant: str = self.config["model"]["variant"]
        # Calibration (training/calibration.py): the reported probabilities are the network's at this
        # temperature; the decision reads the network's own, on which its rule was chosen.
        self.temperature: float = float((self.config.get("calibration") or {}).get("temperature", 1.0))
        self.batch_size = batch_size
        self.bf16 = bf16 and bf16_ok(self.device)
        # Each clip also seen in a mirror (training flips half its clips, so the mirror is a
        # face it knows); the two probabilities are averaged. Twice the network's work.
        self.flip_average = flip_average
        # BlazeFace on the same device as the model; frames are detected detect_batch at a time
        self.detector = FaceDetector(device=str(self.device))
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
            f = self.model.frame_features(x)
        return f.unflatten(0, (-1, 2)) if self.flip_average else f

    def score(self, feats) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, T, P, h, w) clip features ((B, T, 2, P, h, w) with flip_average) -> class probabilities (B, K),
        attention maps (B, T, h', w') or None. Mirrored clips only vote: the maps are the clip's as shown."""
        torch = self.torch
        B = feats.shape[0]
        if self.flip_average:
            feats = feats.transpose(1, 2).flatten(0, 1)  # (2B, T, P, h, w): clip, its mirror, next clip, ...
        with torch.inference_mode(), torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            out = self.model.forward_features(feats)
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


@dataclass
class PendingClip:
    number: int
    frames: np.ndarray  # (T,) frame indices
    displays: list  # T display crops (D, D)


@dataclass
class ClipScorer:
    """Scores clips in batches as they arrive and remembers, for each class, the clip that
    showed it most strongly, with what is needed to draw that clip's attention maps.

    A frame's features (the network's per-frame part) are computed once and shared by the up
    to 4 overlapping clips it belongs to; they are dropped when no later clip can need them."""

    predictor: Predictor
    watch: Stopwatch
    crops: list  # the pipeline's per-frame crops, read by index
    probs: dict[int, np.ndarray] = field(default_factory=dict)  # the network's, which the decision reads
    reported: dict[int, np.ndarray] = field(default_factory=dict)  # the same at the checkpoint's temperature
    best: dict[int, tuple[float, int, list, np.ndarray | None]] = field(default_factory=dict)
    pending: list[PendingClip] = field(default_factory=list)
    feats: dict = field(default_factory=dict)  # frame index -> features tensor (P, h, w)

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
            for k in range(probs.shape[1]):
                if k not in self.best or shown[j, k] > self.best[k][0]:
                    self.best[k] = (float(shown[j, k]), clip.number, clip.displays, None if maps is None else maps[j])
        # later clips start after the last one scored (the end-aligned clip at most 1 frame after)
        keep_from = int(self.pending[-1].frames[0]) + 1
        self.feats = {i: f for i, f in self.feats.items() if i >= keep_from}
        self.pending = []


def analyse_video(
    path: str | Path,
    predictor: Predictor,
    settings: Settings,
    out_dir: Path | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> dict:
    """The full result of one video (see contract.md). Attention PNGs go to `out_dir` when given.
    Raises VideoError for a video that cannot be used (unreadable, too big, no face)."""
    watch = Stopwatch()
    start = time.perf_counter()
    info = check_video(path, settings)
    crop = predictor.crop
    frames = watch.iterate("decode", read_frames(path, max_frames=settings.max_frames))
    detector = watch.wrap("detect", predictor.detector.detect_batch)
    radius = max(crop.smooth_radius, settings.detect_every)
    crops: list[np.ndarray] = []  # one 48 px crop per frame
    scorer = ClipScorer(predictor, watch, crops)
    has_face: list[bool] = []
    times: list[float] = []
    displays: deque = deque()  # display crops of the frames a future clip may still use
    blank = np.zeros((crop.size, crop.size), np.uint8)
    streamed: list[np.ndarray] = []  # frame indices of the clips scored as they completed
    last_report = 0.0

    def submit(frame_idx: np.ndarray) -> None:
        number = len(streamed)
        streamed.append(frame_idx)
        if all(has_face[i] for i in frame_idx):
            first = len(crops) - len(displays)  # frame index of displays[0]
            scorer.add(PendingClip(number, frame_idx, [displays[i - first] for i in frame_idx]))

    for tracked in track_faces(frames, detector, radius=radius, detect_every=settings.detect_every, batch=predictor.detect_batch):
        with watch.stage("crop"):
            if tracked.face is not None:
                crops.append(crop_frame(tracked.gray, tracked.face, crop))
                displays.append(crop_frame(tracked.gray, tracked.face, crop, settings.display_size))
            else:
                crops.append(blank)
                displays.append(None)
        has_face.append(tracked.face is not None)
        times.append(tracked.time_s)
        n = len(crops)
        # A regular clip (start 0, 2, 4, ...) is complete once its last frame is here.
        if n >= CLIP_LENGTH and (n - CLIP_LENGTH) % CLIP_STRIDE == 0:
            submit(np.arange(n - CLIP_LENGTH, n))
        while len(displays) > CLIP_LENGTH:  # only the last clip's frames can still be needed
            displays.popleft()
        if on_progress and time.perf_counter() - last_report > 0.5:
            last_report = time.perf_counter()
            total = min(info.frames, settings.max_frames) if info.frames else None
            on_progress({"stage": "analysing", "frames_done": n, "frames_total": total,
                         "percent": round(100 * min(n / total, 1.0), 1) if total else None})

    n = len(crops)
    clips = clip_indices(n)  # the shared definition; the streamed clips are its first rows
    assert all(np.array_equal(a, b) for a, b in zip(streamed, clips)), "streamed clips differ from clip_indices"
    for frame_idx in clips[len(streamed):]:  # the clip aligned to the end, or the padded short one
        submit(frame_idx)
    scorer.flush()
    if not scorer.probs:
        raise VideoError("no_face", f"No face was found in the video ({n} frames looked at).")

    with watch.stage("vote"):
        K = len(predictor.classes)
        face_clips = sorted(scorer.probs)
        probs = np.stack([scorer.probs[c] for c in face_clips])
        labels = probs.argmax(1)
        neutral = predictor.classes.index("neutral") if "neutral" in predictor.classes else None
        winner, votes, decided = decide_video(probs, K, abstain=neutral, radius=settings.vote_smooth_clips,
                                              min_run=settings.vote_min_clips, abstain_bias=settings.neutral_bias)
        _, peak_clip, peak_displays, peak_maps = scorer.best[winner]  # the clip that showed it most
        voting = int(votes.sum() if neutral is None or winner == neutral else votes.sum() - votes[neutral])

    attention = []
    if out_dir is not None and peak_maps is not None:
        with watch.stage("render"):
            peak_frames = [int(i) for i in clips[peak_clip]]
            attention = render_attention(Path(out_dir), np.stack(peak_displays), peak_maps, peak_frames, [times[i] for i in peak_frames])

    fps = info.fps
    label_of = dict(zip(face_clips, labels))
    decided_of = dict(zip(face_clips, decided))
    timeline = []
    for c, idx in enumerate(clips):
        first, last = int(idx[0]), int(idx[-1])
        face = c in scorer.probs
        timeline.append({
            "index": c,
            "start_frame": first,
            "end_frame": last,
            "start_s": round(times[first], 3),
            "end_s": round(times[last] + 1 / fps, 3),
            "label": predictor.classes[label_of[c]] if face else None,
            "probabilities": _by_class(predictor.classes, scorer.reported[c]) if face else None,
            "face": face,
        })
    # Segments tile the timeline: clips overlap, so one ends where the next run's first clip starts.
    # They are read from the same evidence as the answer (smoothed labels, no run shorter than the
    # vote's minimum), not from each clip's own label.
    runs = label_runs(merge_short_runs(
        [predictor.classes[decided_of[c]] if c in decided_of else None for c in range(len(clips))], settings.vote_min_clips))
    segments = [{
        "label": label,
        "start_s": timeline[first]["start_s"],
        "end_s": timeline[runs[k + 1][1]]["start_s"] if k + 1 < len(runs) else timeline[last]["end_s"],
        "clips": last - first + 1,
    } for k, (label, first, last) in enumerate(runs)]
    peak_frame = int(clips[peak_clip][-1])  # the network decides at a clip's last frame
    watch.ms["total"] = 1000 * (time.perf_counter() - start)
    return {
        "expression": predictor.classes[winner],
        "confidence": round(float(votes[winner] / max(voting, 1)), 4),
        "votes": {c: int(v) for c, v in zip(predictor.classes, votes)},
        "probabilities": _by_class(predictor.classes, np.mean([scorer.reported[c] for c in face_clips], axis=0)),
        "clips": timeline,
        "segments": segments,
        "peak": {"clip": int(peak_clip), "frame": peak_frame, "time_s": round(times[peak_frame], 3)},
        "attention_maps": attention,
        "video": {"frames": n, "fps": round(fps, 3), "duration_s": round(times[-1] + 1 / fps, 3),
                  "width": info.width, "height": info.height},
        "faces": {"frames_with_face": int(sum(has_face)), "frames": n},
        "model": {"variant": predictor.variant, "sha256": predictor.sha256, "flip_average": predictor.flip_average,
                  "temperature": predictor.temperature},
        "decision": {"smooth_clips": settings.vote_smooth_clips, "min_clips": settings.vote_min_clips,
                     "neutral_bias": settings.neutral_bias if neutral is not None else 0.0},
        "timings_ms": {k: round(v, 1) for k, v in watch.ms.items()},
    }


def _by_class(classes: list[str], p: np.ndarray) -> dict[str, float]:
    return {c: round(float(v), 4) for c, v in zip(classes, p)}
