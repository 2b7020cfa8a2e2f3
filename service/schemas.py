"""The shapes of the API's responses (contract.md), for validation and the OpenAPI docs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. upload_too_large, unreadable_video, no_face")
    message: str = Field(description="for a person")


class ErrorBody(BaseModel):
    error: ErrorDetail


class Clip(BaseModel):
    index: int
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    label: str | None = Field(description="the clip's class; null where the clip had no face")
    probabilities: dict[str, float] | None
    face: bool = Field(description="false: a frame of the clip had no face; the clip did not vote")


class Segment(BaseModel):
    label: str | None = Field(description="the label of a run of consecutive clips; null: no face")
    start_s: float
    end_s: float = Field(description="where the next segment starts (the last one: the last clip's end)")
    clips: int


class Peak(BaseModel):
    clip: int = Field(description="the clip that showed the winning expression most strongly")
    frame: int = Field(description="its last frame, where the network makes its decision")
    time_s: float


class AttentionMap(BaseModel):
    name: str
    frame: int
    time_s: float
    url: str
    frames: list[int] | None = None


class VideoMeta(BaseModel):
    frames: int
    fps: float
    duration_s: float
    width: int = Field(description="as displayed: after the rotation below (a phone's portrait video is taller than wide)")
    height: int
    rotation: int = Field(0, description="degrees clockwise (0, 90, 180, 270) the stored frames were turned to be shown "
                                         "upright, as the container's display matrix or `rotate` tag says; faces were found "
                                         "and boxes are given in the turned frame")
    mirrored: bool = Field(False, description="the frames were also mirrored left to right after the rotation (the display "
                                              "matrix says so)")


class FaceStats(BaseModel):
    frames_with_face: int = Field(description="frames in which the main person's face was seen")
    frames: int
    people: int = Field(1, description="people seen (the length of `people`)")
    most_in_frame: int | None = Field(None, description="the most faces seen in one frame (null: an older worker's result)")
    dropped: int = Field(0, description="the most faces of one frame left out because more than max_faces were there")
    max_faces: int | None = Field(None, description="the service's MAX_FACES")


class Box(BaseModel):
    x: float = Field(description="left edge, frame pixels")
    y: float = Field(description="top edge")
    width: float
    height: float


class Track(BaseModel):
    """A person's face box on every frame they were seen in, as parallel arrays: entry i of each is
    frame i of the track."""
    t: list[float] = Field(description="the frame's time, seconds from the video's start")
    x: list[float] = Field(description="the box's left edge, displayed frame pixels")
    y: list[float] = Field(description="its top edge")
    w: list[float] = Field(description="its width")
    h: list[float] = Field(description="its height")


class Image(BaseModel):
    name: str
    frame: int
    time_s: float
    url: str


class Person(BaseModel):
    """One person of the video (a track of their face), with their own answer when a whole clip
    of them was seen."""
    id: int = Field(description="1, 2, ... in order of appearance; a person who leaves for longer than TRACK_GAP_S and "
                                "comes back is a new id")
    scored: bool = Field(description="false: seen, but never for a whole clip (8 frames); no answer")
    first_s: float
    last_s: float
    frames: int = Field(description="frames in which their face was seen")
    box_at_peak: Box | None = Field(description="their face box at the peak frame (null when not scored)")
    expression: str | None
    confidence: float | None
    votes: dict[str, int] | None
    probabilities: dict[str, float] | None
    clips: list[Clip] = Field(description="the video's clips from their first frame to their last")
    segments: list[Segment]
    peak: Peak | None
    attention_maps: list[AttentionMap]
    thumbnail: Image | None = Field(description="their face where it was seen largest")
    track: Track | None = Field(None, description="where their face was on each frame it was seen in (null: an older "
                                                  "worker's result)")


class ModelRef(BaseModel):
    variant: str
    sha256: str
    flip_average: bool = Field(False, description="each clip was also scored in a mirror and the two averaged")
    temperature: float = Field(1.0, description="the reported probabilities are the network's at this temperature, "
                                                "fitted on held-out people (1: not calibrated); labels do not depend on it")


class Decision(BaseModel):
    """How the answer and the timeline were read from the clips (the service's settings)."""
    smooth_clips: int = Field(description="each clip's probabilities averaged with its neighbours' within +-N clips")
    min_clips: int = Field(description="an expression outvotes neutral only where it holds this many clips")
    neutral_bias: float = Field(description="neutral's probability weighed by exp(N) before each clip was labelled")


class Result(BaseModel):
    # the OpenAPI document replaces this with the served checkpoint's classes (service.api.describe_served_model)
    expression: str = Field(description="one of the served model's classes (GET /model lists them)")
    confidence: float = Field(description="share of the voting clips that voted for it: how one-sided the video's clips "
                                          "are, not the probability that the answer is right")
    votes: dict[str, int]
    probabilities: dict[str, float] = Field(description="mean calibrated clip probability per class (model.temperature)")
    clips: list[Clip]
    segments: list[Segment] = Field(description="the timeline as runs of one label, in order, covering every clip")
    peak: Peak
    attention_maps: list[AttentionMap]
    video: VideoMeta
    faces: FaceStats
    people: list[Person] = Field(default_factory=list, description="every person seen, the longest seen first; the "
                                 "top-level fields are the first scored one's (the main person)")
    model: ModelRef
    decision: Decision | None = Field(None, description="null only in results made by an older worker")
    timings_ms: dict[str, float]


class PredictResult(Result):
    job_id: str
    status_url: str


class Accepted(BaseModel):
    job_id: str
    status_url: str


class JobView(BaseModel):
    job_id: str
    status: Literal["queued", "started", "finished", "failed"]
    progress: dict
    result: Result | None
    error: ErrorDetail | None


class ModelInfo(BaseModel):
    name: str | None = Field(None, description="the checkpoint's name (served-v8; the bundled ones are chosen by MODEL_DIR=default, "
                                               "synthetic or synthetic-7class)")
    variant: str
    classes: list[str]
    input_size: int
    clip_length: int
    stride: int
    sha256: str
    parameters: int
    crop: dict
    metrics: dict
    training: dict = Field(description="data, command, seed and recipe the checkpoint was trained with")
    decision: dict | None = Field(None, description="the prior for neutral this checkpoint is decided with, and how it was "
                                                    "chosen (NEUTRAL_BIAS overrides it); null: none recorded (2.5 is used)")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    redis: bool
    storage: bool = True  # the uploads' and results' storage (directory or S3 bucket) answered
    workers: int
    queue_depth: int
    live_workers: int = 0  # live workers (WS /live) with the model, each serving up to LIVE_SESSIONS_PER_WORKER sessions
