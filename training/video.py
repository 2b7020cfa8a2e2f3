"""Reading video files: which container it is, what it holds, and its frames one at a time.

Shared by the service and the class-folder data loader, so a served video and a training video
are decoded the same way. PyAV (FFmpeg) decodes: it reads the stream's size and rate without
decoding anything (so an oversized file is refused cheaply), decodes with threads, and hands
out the gray picture FFmpeg would convert the frame to, read from its luma plane (`gray_of`), turned as the container says the video is shown (a phone
stores its sensor's frames sideways and says how to turn them: the display matrix, or the older
`rotate` tag), so every reader sees faces upright. The container is recognised from its first
bytes and only that demuxer is opened: FFmpeg is never asked to guess among its hundreds of formats.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import av

# Container families we accept (an allowlist): FFmpeg demuxer name by file signature, and how a
# person calls it. mp4/mov/m4v/3gp, mkv/webm, avi, flv (CREMA-D ships .flv), MPEG-TS, MPEG program
# streams (.mpg/.mpeg/.vob: MPEG-1/2 video) and Ogg (.ogg/.ogv: Theora).
FORMAT_NAMES = {
    "mov,mp4,m4a,3gp,3g2,mj2": "an MP4/MOV",
    "matroska,webm": "a Matroska/WebM",
    "avi": "an AVI",
    "flv": "an FLV",
    "mpegts": "an MPEG transport stream",
    "mpeg": "an MPEG program stream (.mpg)",
    "ogg": "an Ogg",
}
DEMUXERS = tuple(FORMAT_NAMES)
ACCEPTED = "mp4, mov, mkv, webm, avi, flv, MPEG-TS, MPEG-PS (.mpg) or Ogg"


class VideoError(Exception):
    """A video that cannot be used, with a machine-readable code and a message for a person."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Orientation:
    """How a stored frame is turned to be shown: `rotation` degrees clockwise (0, 90, 180 or 270),
    then mirrored left to right when `mirrored`. Together they are the eight ways a display
    matrix made of right angles can show a frame."""

    rotation: int = 0
    mirrored: bool = False

    def show(self, image: np.ndarray) -> np.ndarray:
        """A stored frame (H, W[, C]) as displayed (contiguous: the detector and OpenCV want it so)."""
        if not self.rotation and not self.mirrored:
            return image
        turned = np.rot90(image, -self.rotation // 90)  # np.rot90 turns counter-clockwise
        return np.ascontiguousarray(turned[:, ::-1] if self.mirrored else turned)

    def store(self, image: np.ndarray) -> np.ndarray:
        """The inverse of show: an upright frame as a phone would store it (write_video)."""
        if not self.rotation and not self.mirrored:
            return image
        image = image[:, ::-1] if self.mirrored else image
        return np.ascontiguousarray(np.rot90(image, self.rotation // 90))

    @property
    def matrix(self) -> np.ndarray:
        """The 2x2 map of (x, y) stored -> displayed, y pointing down, as FFmpeg's display matrix
        holds it ((x', y') = (a x + c y, b x + d y) is [[a, c], [b, d]])."""
        m = np.array([[1, 0], [0, 1]])
        for _ in range(self.rotation // 90):
            m = np.array([[0, -1], [1, 0]]) @ m  # a quarter turn clockwise on the screen: right goes down
        return np.array([[-1, 0], [0, 1]]) @ m if self.mirrored else m


UPRIGHT = Orientation()
ORIENTATIONS = [Orientation(r, m) for m in (False, True) for r in (0, 90, 180, 270)]


def orientation_of_matrix(display_matrix) -> Orientation:
    """The Orientation of FFmpeg's display matrix (9 int32: a b u / c d v / x y w, a-d in 16.16
    fixed point). A matrix that is not made of right angles (a tilted video) is shown as stored."""
    m = np.asarray(display_matrix, dtype=np.float64).reshape(3, 3)[:2, :2].T / 65536.0
    if not np.allclose(np.abs(m), np.round(np.abs(m)), atol=0.01):
        return UPRIGHT
    for o in ORIENTATIONS:
        if np.array_equal(o.matrix, np.round(m).astype(int)):
            return o
    return UPRIGHT


def orientation_of_tag(tag: str | None) -> Orientation:
    """The Orientation of a `rotate` stream tag: degrees clockwise, as FFmpeg before 7 exported the
    display matrix and as some muxers still store it (Matroska's ROTATE tag)."""
    try:
        degrees = int(float(tag or 0)) % 360
    except ValueError:
        return UPRIGHT
    return Orientation(degrees) if degrees in (0, 90, 180, 270) else UPRIGHT


def orientation_of(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> Orientation:
    """How the container says to show `frame`: its display matrix (FFmpeg 7 hands the stream's to
    every decoded frame), else the stream's `rotate` tag."""
    from av.sidedata.sidedata import Type

    side = frame.side_data.get(Type.DISPLAYMATRIX)  # by type: PyAV 18.1.1 iterates the types, 18.1.0 the data
    if side is not None:
        return orientation_of_matrix(np.frombuffer(bytes(side), dtype=np.int32)[:9])
    tags = {k.lower(): v for k, v in stream.metadata.items()}
    return orientation_of_tag(tags.get("rotate"))


@dataclass(frozen=True)
class VideoInfo:
    """What the headers say, before a frame is decoded: the size is as stored (a phone's portrait
    video may be stored landscape); read_frames hands out frames as displayed."""

    width: int
    height: int
    fps: float
    frames: int  # from the container's header; may be 0 (unknown) or an estimate until decoded
    duration_s: float  # likewise
    container: str


def sniff_container(head: bytes) -> str | None:
    """The FFmpeg demuxer for a file starting with `head` (its first 16+ bytes), or None."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "mov,mp4,m4a,3gp,3g2,mj2"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska,webm"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:3] == b"FLV":
        return "flv"
    if head[:4] == b"\x00\x00\x01\xba":  # an MPEG-1/2 pack header
        return "mpeg"
    if head[:4] == b"OggS":
        return "ogg"
    if len(head) >= 1 and head[0] == 0x47 and (len(head) < 189 or head[188] == 0x47):
        return "mpegts"
    return None


def _open(path: Path) -> tuple[av.container.InputContainer, str]:
    # PyAV is imported where a file is opened, not with the module: training on a pack
    # (training.data.load_pack) then runs on machines without it.
    import av

    with open(path, "rb") as f:
        head = f.read(256)
    if not head:
        raise VideoError("empty_file", "The file is empty.")
    demuxer = sniff_container(head)
    if demuxer is None:
        raise VideoError(
            "unsupported_format",
            f"Not a video container this service reads ({ACCEPTED}).",
        )
    try:
        container = av.open(str(path), format=demuxer.split(",")[0], metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError, OSError) as e:
        # FFmpeg's wording names our storage path and its own internals: the caller gets ours;
        # the original stays chained for the server's log.
        raise VideoError(
            "unreadable_video", f"The file looks like {FORMAT_NAMES[demuxer]} video but its data is damaged or cut off."
        ) from e
    if not container.streams.video:
        container.close()
        raise VideoError("no_video_stream", "The file holds no video stream.")
    return container, demuxer


def probe_video(path: str | Path) -> VideoInfo:
    """Size, rate and length from the container's headers, without decoding a frame."""
    container, demuxer = _open(Path(path))
    with container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 30.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1e6
        else:
            duration = 0.0
        frames = int(stream.frames or round(duration * fps))
        width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise VideoError("unreadable_video", "The video stream has no frame size.")
    return VideoInfo(width, height, fps, frames, duration or frames / fps, demuxer.split(",")[0])


@dataclass(frozen=True)
class Frame:
    index: int
    time_s: float
    gray: np.ndarray  # (H, W) uint8, the luma plane as displayed
    orientation: Orientation = UPRIGHT  # how the stored frame was turned to be displayed


# 8-bit pixel formats whose first plane is the picture's luma at full size.
LUMA_FIRST = frozenset(
    ["gray", "nv12", "nv16", "nv21", "nv24"]
    + [f"yuv{j}{s}p" for j in ("", "j") for s in ("410", "411", "420", "422", "440", "444")]
)


def gray_of(frame: av.VideoFrame) -> np.ndarray:
    """The frame's gray picture (H, W) uint8, exactly as FFmpeg's converter makes it
    (`frame.to_ndarray(format="gray")`: the luma plane, stretched from studio to full range where the
    video is stored in studio range), but read from the luma plane through that converter's own
    table: the converter costs ~5 ms a 640x360 frame here, most of decoding a video; a table lookup
    ~0.2 ms. Other formats (10-bit, RGB, palettes) go through the converter."""
    plane = frame.planes[0]
    if (
        frame.format.name not in LUMA_FIRST
        or plane.line_size < plane.width
        or plane.buffer_size < plane.line_size * plane.height
    ):
        return frame.to_ndarray(format="gray")
    luma = np.frombuffer(plane, np.uint8, count=plane.line_size * plane.height)
    luma = luma.reshape(plane.height, plane.line_size)[:, : plane.width]
    return cv2.LUT(luma, _gray_table(frame.format.name, int(frame.color_range)))


@functools.cache
def _gray_table(pixel_format: str, color_range: int) -> np.ndarray:
    """What FFmpeg's converter makes of each luma value 0..255 of `pixel_format` in `color_range`:
    a 16x16 frame holding every value, converted once."""
    import av

    frame = av.VideoFrame(16, 16, pixel_format)
    for plane in frame.planes:  # chroma: anything; gray does not read it
        plane.update(bytes(plane.buffer_size))
    luma = frame.planes[0]
    values = np.zeros((luma.height, luma.line_size), np.uint8)
    values[:16, :16] = np.arange(256, dtype=np.uint8).reshape(16, 16)
    luma.update(values.tobytes())
    frame.color_range = color_range
    return np.ascontiguousarray(frame.to_ndarray(format="gray")[:16, :16].reshape(256))


def read_frames(path: str | Path, max_frames: int | None = None, threads: int = 0) -> Iterator[Frame]:
    """Decoded frames in order, one at a time (a long video is never held in memory), as displayed:
    turned by the container's orientation (read from the first frame: a video keeps one).

    Stops quietly at the first undecodable packet after at least one frame (a truncated upload
    yields what it holds); raises VideoError if no frame at all can be decoded.
    `threads` = 0 lets FFmpeg choose.
    """
    import av

    container, _ = _open(Path(path))
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        index = 0
        first_pts = None
        orientation = UPRIGHT
        try:
            for frame in container.decode(stream):
                if max_frames is not None and index >= max_frames:
                    break
                if index == 0:
                    orientation = orientation_of(frame, stream)
                t = frame.time
                if t is not None and first_pts is None:
                    first_pts = t
                time_s = (
                    (t - first_pts)
                    if t is not None and first_pts is not None
                    else index / float(stream.average_rate or 30)
                )
                yield Frame(index, float(time_s), orientation.show(gray_of(frame)), orientation)
                index += 1
        except (av.FFmpegError, ValueError) as e:
            if index == 0:
                raise VideoError(
                    "undecodable_video",
                    "No frame of the video could be decoded: its video data is damaged, or in a codec this service does not decode.",
                ) from e
    if index == 0:
        raise VideoError("no_frames", "The video holds no decodable frames.")


# What write_video encodes each container with: H.264 where the container takes it (what phones and
# webcams hand over), else the format's usual codec. Ogg: VP8 (this FFmpeg decodes Theora but cannot encode it).
CODEC_BY_SUFFIX = {
    ".mp4": "libx264",
    ".mov": "libx264",
    ".mkv": "libx264",
    ".webm": "libvpx-vp9",
    ".avi": "mjpeg",
    ".mpg": "mpeg2video",
    ".mpeg": "mpeg1video",
    ".ogg": "libvpx",
    ".ogv": "libvpx",
}
BIT_RATE = {
    "mpeg1video": 4_000_000,
    "mpeg2video": 4_000_000,
    "libvpx": 2_000_000,
}  # their defaults (~200 kb/s) blur a face away


def write_video(
    path: str | Path,
    frames,
    fps: float = 30.0,
    codec: str | None = None,
    bit_rate: int | None = None,
    orientation: Orientation = UPRIGHT,
    as_tag: bool = False,
    options: dict | None = None,
) -> Path:
    """Encode gray or BGR uint8 frames into `path`, the container from its suffix (CODEC_BY_SUFFIX):
    the synthetic talking videos and the tests' videos. Odd sizes lose their last row or column.
    `bit_rate` (bits/s) replaces the codec's quality setting: a low one films as a cheap camera or a
    call does (benchmarks/studio_shift.py). `options` replace the codec's (e.g. {"qp": "0"}: lossless).

    `orientation`: the frames are stored as a phone stores them (Orientation.store) and the container
    is told how to show them upright: by its display matrix, or, with `as_tag`, by the older
    `rotate` tag (a rotation only; Matroska keeps the tag, MP4 does not)."""
    import av
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = codec or CODEC_BY_SUFFIX[path.suffix]
    with av.open(str(path), "w") as out:
        stream = None
        for f in frames:
            if f.ndim == 2:
                f = cv2.cvtColor(f, cv2.COLOR_GRAY2BGR)
            f = orientation.store(f)
            if stream is None:
                h, w = f.shape[:2]
                stream = out.add_stream(codec, rate=int(round(fps)))
                stream.width, stream.height = w - w % 2, h - h % 2
                stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
                if codec == "libx264" and bit_rate is None:
                    stream.options = {"preset": "veryfast", "crf": "20"}
                if options is not None:
                    stream.options = options
                if bit_rate is not None or codec in BIT_RATE:
                    stream.bit_rate = bit_rate or BIT_RATE[codec]
                if as_tag:
                    assert not orientation.mirrored, "the rotate tag holds no mirror"
                    stream.metadata["rotate"] = str(orientation.rotation)
                elif orientation != UPRIGHT:
                    # PyAV's rotation is counter-clockwise and its flip comes after it, as ours does
                    stream.set_display_rotation(-orientation.rotation, hflip=orientation.mirrored)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: stream.height, : stream.width]), format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        if stream is None:
            raise ValueError("no frames to write")
        for packet in stream.encode():
            out.mux(packet)
    return path
