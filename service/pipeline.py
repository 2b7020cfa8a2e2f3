"""One video in, one result out: the function the worker and `python -m service predict` both call.

    video -> frames -> faces -> crops -> clips -> model -> vote -> result (+ attention PNGs)

The steps live in their own modules: the checkpoint (service/predictor.py), frames to scored clips
(service/analysis.py, service/scoring.py), the decision rule (service/decision.py) and each person's
part of the result (service/judge.py); this one checks the video, streams its frames through them
and puts the result together as its model (service/schemas.py: `Result`). The video is streamed:
frames are decoded, tracked and cropped one at a time, and clips go through the model in batches as
soon as their 8 frames exist, so memory does not grow with the video's resolution, and only by
~2 KB a frame with its length (capped by max_frames).

The names other code imports from here (Predictor, Analysis, decide_clips, ...) stay importable here.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from service.analysis import Analysis, FrameTimes, Person
from service.decision import decide_clips, neutral_bias, neutral_class
from service.judge import Judge, box_of, by_class, track_of
from service.predictor import LEGACY_NEUTRAL_BIAS, Predictor
from service.schemas import Decision, FaceStats, ModelRef, Result, VideoMeta
from service.scoring import ClipScorer, PendingClip
from service.settings import Settings
from service.stopwatch import Stopwatch
from training.clips import CLIP_LENGTH
from training.video import Frame, VideoError, VideoInfo, probe_video, read_frames

__all__ = [
    "LEGACY_NEUTRAL_BIAS",
    "Analysis",
    "ClipScorer",
    "FrameTimes",
    "Judge",
    "PendingClip",
    "Person",
    "Predictor",
    "Stopwatch",
    "analyse_video",
    "box_of",
    "by_class",
    "check_video",
    "decide_clips",
    "neutral_bias",
    "neutral_class",
    "track_of",
    "video_result",
]


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
            "video_too_long",
            f"The video lasts {info.duration_s:.0f} s; this service accepts up to {settings.max_duration_s:.0f} s.",
        )
    return info


def analyse_video(
    path: str | Path,
    predictor: Predictor,
    settings: Settings,
    out_dir: Path | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> dict:
    """The full result of one video as JSON (docs/api.md, "The result"): what the worker stores and
    `predict --json` prints, `video_result`'s model as it stores it (Result.stored)."""
    return video_result(path, predictor, settings, out_dir, on_progress).stored()


def video_result(
    path: str | Path,
    predictor: Predictor,
    settings: Settings,
    out_dir: Path | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> Result:
    """The full result of one video: every person in it, and at the top level the main one (seen in
    the most frames). Attention and face PNGs go to `out_dir` when given. Raises VideoError for a
    video that cannot be used (unreadable, too big, no face)."""
    watch = Stopwatch()
    start = time.perf_counter()
    info = check_video(path, settings)
    analysis = Analysis(predictor, settings, info.fps, watch, predictor.detect_batch)
    first = stream(path, analysis, info, settings, watch, on_progress)
    clips = analysis.finish()
    seen_people, main_person = people_of(analysis)
    times, fps = analysis.times, info.fps
    judge = Judge(predictor, settings, watch, clip_grid(clips, times, fps), clips, times, fps, out_dir)
    people = [judge.person(p) for p in seen_people]
    main = next(e for e, p in zip(people, seen_people) if p is main_person)
    clip_rows, segments = judge.timeline(main_person, range(len(clips)))
    top_maps = top_level_maps(main, out_dir)
    watch.ms["total"] = 1000 * (time.perf_counter() - start)
    tracker, n = analysis.tracker, len(times)
    return Result(
        expression=main.expression,
        confidence=main.confidence,
        votes=main.votes,
        probabilities=main.probabilities,
        clips=clip_rows,
        segments=segments,
        peak=main.peak,
        attention_maps=top_maps,
        video=video_meta(first, times, fps),
        faces=FaceStats(
            frames_with_face=main.frames,
            frames=n,
            people=len(people),
            most_in_frame=tracker.most_in_frame,
            dropped=tracker.dropped,
            max_faces=settings.max_faces,
        ),
        people=people,
        model=ModelRef(
            variant=predictor.variant,
            sha256=predictor.sha256,
            flip_average=predictor.flip_average,
            temperature=predictor.temperature,
        ),
        decision=Decision(
            smooth_clips=settings.vote_smooth_clips,
            min_clips=settings.vote_min_clips,
            neutral_bias=neutral_bias(predictor, settings),
        ),
        timings_ms={k: round(v, 1) for k, v in watch.ms.items()},
    )


def clip_grid(clips, times, fps: float) -> list[dict]:
    """The video's clips: index, first and last frame, and when they start and end."""
    return [
        {
            "index": c,
            "start_frame": int(idx[0]),
            "end_frame": int(idx[-1]),
            "start_s": round(times[int(idx[0])], 3),
            "end_s": round(times[int(idx[-1])] + 1 / fps, 3),
        }
        for c, idx in enumerate(clips)
    ]


def top_level_maps(main, out_dir: Path | None) -> list:
    """The main person's pictures, also under names without the person ("peak", "peak_clip",
    "peak_evidence"), so links that clients build by name keep working."""
    top_maps = [m.model_copy(update={"name": m.name.removeprefix(f"person{main.id}_")}) for m in main.attention_maps]
    for m, top in zip(main.attention_maps, top_maps):
        shutil.copyfile(Path(out_dir) / f"{m.name}.png", Path(out_dir) / f"{top.name}.png")
    return top_maps


def video_meta(first, times, fps: float) -> VideoMeta:
    """The video as displayed: frames, rate, length, size after turning, and how it was turned."""
    return VideoMeta(
        frames=len(times),
        fps=round(fps, 3),
        duration_s=round(times[-1] + 1 / fps, 3),
        width=first.gray.shape[1],
        height=first.gray.shape[0],
        rotation=first.orientation.rotation,
        mirrored=first.orientation.mirrored,
    )


def stream(
    path: str | Path,
    analysis: Analysis,
    info: VideoInfo,
    settings: Settings,
    watch: Stopwatch,
    on_progress: Callable[[dict], None] | None,
) -> Frame | None:
    """Every frame of the video (up to max_frames) decoded and pushed into the analysis, its
    progress reported at most twice a second. Returns the first frame: its size and orientation
    are the video's as displayed."""
    last_report = 0.0
    first: Frame | None = None
    for frame in watch.iterate("decode", read_frames(path, max_frames=settings.max_frames)):
        if first is None:
            first = frame
        analysis.push(frame)
        if on_progress and time.perf_counter() - last_report > 0.5:
            last_report = time.perf_counter()
            n = len(analysis.times)
            total = min(info.frames, settings.max_frames) if info.frames else None
            on_progress(
                {
                    "stage": "analysing",
                    "frames_done": n,
                    "frames_total": total,
                    "percent": round(100 * min(n / total, 1.0), 1) if total else None,
                }
            )
    return first


def people_of(analysis: Analysis) -> tuple[list[Person], Person]:
    """The people of a finished analysis in order of how long each was seen (the detector's noise, a
    few detections, is no one), and the main one: the first with a scored clip. No scored clip at
    all is a VideoError (no_face)."""
    people, n = analysis.people, len(analysis.times)
    seen = sorted(
        (people[t.id] for t in analysis.tracker.people() if t.id in people), key=lambda p: (-len(p.crops), p.id)
    )
    scored = [p for p in seen if p.scorer.probs]
    if not scored:
        if seen:
            raise VideoError(
                "no_face",
                f"Faces were seen in the video, but none for a whole clip ({CLIP_LENGTH} frames; "
                f"{n} frames looked at).",
            )
        raise VideoError("no_face", f"No face was found in the video ({n} frames looked at).")
    return seen, scored[0]
