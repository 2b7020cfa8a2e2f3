"""The API's contract in one place (docs/api.md tells it in words): the result, which the pipeline
builds as these models (service/pipeline.py, service/judge.py), the other responses, the errors, and
the live stream's messages both ways. The OpenAPI document, the routes' validation and the docs are
all read from here, so none of them can say something the code does not do."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. upload_too_large, unreadable_video, no_face")
    message: str = Field(description="for a person")


class ErrorBody(BaseModel):
    error: ErrorDetail


class Clip(BaseModel):
    """One 8-frame clip (stride 2: clip k starts at frame 2k; the last one ends with the video)."""

    index: int
    start_frame: int
    end_frame: int
    start_s: float = Field(description="its first frame's time, seconds from the video's start")
    end_s: float = Field(description="its last frame's time plus one frame")
    label: str | None = Field(description="the clip's class; null where the clip had no face")
    probabilities: dict[str, float] | None = Field(
        description="the clip's calibrated probability per class, to 4 decimals; null where the clip had no face"
    )
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


URL = (
    "where to GET the PNG (GET /jobs/{job_id}/attention/{name}.png); every result the API serves has it, a result "
    "made without a server (`predict --json`) has none"
)


class AttentionMap(BaseModel):
    """One picture of a person's peak clip (service/render.py)."""

    name: str = Field(
        description="peak (RAM's attention on the clip's last frame), peak_clip (every frame of the clip) or "
        "peak_evidence (where the answer came from); a person's own are prefixed personN_"
    )
    frame: int = Field(description="the frame it shows (peak_clip: the clip's first)")
    time_s: float
    url: str | None = Field(None, description=URL)
    frames: list[int] | None = Field(None, description="peak_clip only: the frames it shows, left to right")


class VideoMeta(BaseModel):
    frames: int
    fps: float
    duration_s: float
    width: int = Field(
        description="as displayed: after the rotation below (a phone's portrait video is taller than wide)"
    )
    height: int
    rotation: int = Field(
        0,
        description="degrees clockwise (0, 90, 180, 270) the stored frames were turned to be shown "
        "upright, as the container's display matrix or `rotate` tag says; faces were found "
        "and boxes are given in the turned frame",
    )
    mirrored: bool = Field(
        False, description="the frames were also mirrored left to right after the rotation (the display matrix says so)"
    )


class FaceStats(BaseModel):
    frames_with_face: int = Field(description="frames in which the main person's face was seen")
    frames: int
    people: int = Field(1, description="people seen (the length of `people`)")
    most_in_frame: int | None = Field(
        None, description="the most faces seen in one frame (null: an older worker's result)"
    )
    dropped: int = Field(0, description="the most faces of one frame left out because more than max_faces were there")
    max_faces: int | None = Field(None, description="the service's RAMFER_MAX_FACES")


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
    url: str | None = Field(None, description=URL)


class Person(BaseModel):
    """One person of the video (a track of their face), with their own answer when a whole clip
    of them was seen."""

    id: int = Field(
        description="1, 2, ... in order of appearance; a person who leaves for longer than RAMFER_TRACK_GAP_S and "
        "comes back is a new id"
    )
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
    track: Track | None = Field(
        None, description="where their face was on each frame it was seen in (null: an older worker's result)"
    )


class ModelRef(BaseModel):
    variant: str
    sha256: str
    flip_average: bool = Field(False, description="each clip was also scored in a mirror and the two averaged")
    temperature: float = Field(
        1.0,
        description="the reported probabilities are the network's at this temperature, "
        "fitted on held-out people (1: not calibrated); labels do not depend on it",
    )


class Decision(BaseModel):
    """How the answer and the timeline were read from the clips (the service's settings)."""

    smooth_clips: int = Field(description="each clip's probabilities averaged with its neighbours' within +-N clips")
    min_clips: int = Field(description="an expression outvotes neutral only where it holds this many clips")
    neutral_bias: float = Field(description="neutral's probability weighed by exp(N) before each clip was labelled")


class Result(BaseModel):
    # the OpenAPI document replaces this with the served checkpoint's classes (service.openapi.name_classes)
    expression: str = Field(description="one of the served model's classes (GET /model lists them)")
    confidence: float = Field(
        description="share of the voting clips that voted for it: how one-sided the video's clips "
        "are, not the probability that the answer is right"
    )
    votes: dict[str, int]
    probabilities: dict[str, float] = Field(
        description="mean calibrated clip probability per class (model.temperature)"
    )
    clips: list[Clip]
    segments: list[Segment] = Field(description="the timeline as runs of one label, in order, covering every clip")
    peak: Peak
    attention_maps: list[AttentionMap]
    video: VideoMeta
    faces: FaceStats
    people: list[Person] = Field(
        default_factory=list,
        description="every person seen, the longest seen first; the "
        "top-level fields are the first scored one's (the main person)",
    )
    model: ModelRef
    decision: Decision | None = Field(None, description="null only in results made by an older worker")
    timings_ms: dict[str, float]

    def stored(self) -> dict:
        """The result as JSON, as the worker stores it and `predict --json` prints it: every field the
        pipeline gave, in this order. Left out are only the keys results never had before they were
        models: an image's `url` (GET /jobs/{id} adds it) and `frames` of the single-frame pictures.
        The pipeline gives every other field, so unset and absent are the same thing here."""
        return self.model_dump(mode="json", exclude_unset=True)


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
    name: str | None = Field(
        None,
        description="the checkpoint's name (e.g. served-v10; the bundled ones are chosen by RAMFER_MODEL_DIR=default, "
        "synthetic or synthetic-7class)",
    )
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
    decision: dict | None = Field(
        None,
        description="the prior for neutral this checkpoint is decided with, and how it was "
        "chosen (RAMFER_NEUTRAL_BIAS overrides it); null: none recorded (2.5 is used)",
    )


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    redis: bool
    storage: bool = True  # the uploads' and results' storage (directory or S3 bucket) answered
    workers: int
    queue_depth: int
    live_workers: int = (
        0  # live workers (WS /live) with the model, each serving up to RAMFER_LIVE_SESSIONS_PER_WORKER sessions
    )


# The live stream (WS /live, docs/api.md "Live"). Text messages are these as JSON objects, told apart by
# `type`; frames are binary: 8 bytes of capture time (float64, big-endian, seconds), then a JPEG.


class LiveStart(BaseModel):
    """Client, first: the rate it will send frames at, and its key where the service needs one."""

    type: Literal["start"]
    fps: float = Field(15.0, ge=1, le=60, strict=True, description="frames a second the client will send, 1 to 60")
    api_key: str | None = Field(
        None,
        description="when the service needs keys (a browser's WebSocket cannot send "
        "headers; other clients may send `Authorization: Bearer KEY`)",
    )


class LiveStop(BaseModel):
    """Client: no more frames. The frames sent are analysed, then the last clips, a decision and "end" come."""

    type: Literal["stop"]


class LiveLimits(BaseModel):
    max_frame_bytes: int = Field(description="the largest frame message taken (RAMFER_LIVE_MAX_FRAME_KB)")
    buffer_frames: int = Field(description="frames waiting for the worker beyond this are dropped, oldest first")
    idle_timeout_s: float = Field(description="the session closes when no message comes for this long")
    decide_every_clips: int = Field(description="a decision comes every this many clips")
    window_s: float = Field(description="each decision reads the clips of this many last seconds")


class LiveReady(BaseModel):
    """Service: a live worker serves the session; send frames."""

    type: Literal["ready"] = "ready"
    session: str
    fps: float
    limits: LiveLimits


class LiveClip(BaseModel):
    """Service: one person's clip (8 frames, stride 2), as it closes."""

    type: Literal["clip"] = "clip"
    clip: int = Field(description="the clip's number in the session: frames 2k to 2k + 7 of those analysed")
    person: int = Field(description="the person's id in the session (1, 2, ... as faces appear)")
    start_s: float = Field(description="its first frame's capture time, as the client sent it")
    end_s: float = Field(description="its last frame's capture time")
    label: str
    probabilities: dict[str, float] = Field(description="calibrated, per class, as uploads' clips")
    face: Box = Field(description="the person's face box on the clip's last frame, frame pixels")


class LiveDecision(BaseModel):
    """Service, every RAMFER_LIVE_DECIDE_EVERY_CLIPS clips and at the end: the uploads' decision rule over the
    last RAMFER_LIVE_WINDOW_S seconds of the person seen in most of their clips."""

    type: Literal["decision"] = "decision"
    person: int
    expression: str
    confidence: float = Field(description="as an upload's: the winner's share of the clips that voted")
    votes: dict[str, int]
    clips: int = Field(description="the clips of the window that were read")
    start_s: float = Field(description="the window's first clip's last capture time")
    end_s: float = Field(description="its latest clip's last capture time")
    attention: list[list[float]] | None = Field(
        description="where the network looked at the latest clip's last frame: an "
        "h x w grid in (0, 1) over the face box (null: no attention)"
    )
    frames_received: int
    frames_analysed: int
    dropped: int = Field(description="frames dropped so far because they came faster than the worker read them")
    fps_analysed: float | None = Field(description="the rate of the frames analysed last (null: too few yet)")


class LiveEnd(BaseModel):
    """Service, last after a stop; the socket then closes with 1000."""

    type: Literal["end"] = "end"
    frames_received: int
    frames_analysed: int
    dropped: int
    fps_analysed: float | None


class LiveError(BaseModel):
    """Service: why the session ends; the socket then closes with 4000 + the HTTP status that means the same."""

    type: Literal["error"] = "error"
    code: str = Field(
        description="bad_message, bad_frame, unauthorized, too_many_sessions, no_live_worker, ... "
        "(docs/api.md lists them with their close codes)"
    )
    message: str = Field(description="for a person")


LiveClientMessage = Annotated[LiveStart | LiveStop, Field(discriminator="type")]
LiveServiceMessage = Annotated[LiveReady | LiveClip | LiveDecision | LiveEnd | LiveError, Field(discriminator="type")]
LIVE_MESSAGES = {"client": (LiveStart, LiveStop), "service": (LiveReady, LiveClip, LiveDecision, LiveEnd, LiveError)}
