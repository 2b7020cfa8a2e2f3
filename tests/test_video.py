"""Reading and writing videos (training/video.py): frames stored sideways, upside down or mirrored,
with the container saying how to show them (a display matrix or the older `rotate` tag), read back upright.
What the whole pipeline answers for such videos: tests/test_orientation.py."""

from __future__ import annotations

import numpy as np
import pytest
from videos import LOSSLESS

from training.video import ORIENTATIONS, Orientation, probe_video, read_frames, write_video


def test_orientation_show_undoes_store_and_matches_its_matrix():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for o in ORIENTATIONS:
        np.testing.assert_array_equal(o.show(o.store(image)), image)
        # where the stored frame's top-left and top-right pixels end up, by the 2x2 map
        shown = o.show(image)
        h, w = shown.shape
        offset = [
            (w - 1) * (o.matrix[0] < 0).any(),
            (h - 1) * (o.matrix[1] < 0).any(),
        ]  # the matrix's, to stay in frame
        for x, y in [(0, 0), (3, 0), (0, 2), (2, 1)]:
            xd, yd = o.matrix @ np.array([x, y]) + offset
            assert shown[yd, xd] == image[y, x], (o, x, y)
    assert Orientation(90).show(np.zeros((360, 640))).shape == (640, 360)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_read_frames_turns_every_orientation_upright(tmp_path, suffix):
    """An asymmetric picture stored each of the eight ways, with the display matrix written as
    phones write it (PyAV's stream.set_display_rotation), reads back as it was drawn."""
    rng = np.random.default_rng(0)
    image = (rng.integers(0, 4, (6, 8)) * 60).astype(np.uint8).repeat(8, 0).repeat(8, 1)  # 48x64, blocks
    for o in ORIENTATIONS:
        path = write_video(
            tmp_path / f"{o.rotation}{'m' if o.mirrored else ''}{suffix}", [image] * 3, orientation=o, options=LOSSLESS
        )
        assert (probe_video(path).width, probe_video(path).height) == (
            (48, 64) if o.rotation % 180 else (64, 48)
        )  # as stored
        frames = list(read_frames(path))
        assert [f.orientation for f in frames] == [o] * 3
        for f in frames:  # to 1 level: gray to YUV and back rounds
            np.testing.assert_allclose(f.gray, image, atol=1)


def test_read_frames_reads_the_older_rotate_tag(tmp_path):
    image = np.zeros((48, 64), np.uint8)
    image[4:20, 4:30] = 255
    for degrees in (90, 180, 270):
        path = write_video(
            tmp_path / f"tag{degrees}.mkv", [image] * 2, orientation=Orientation(degrees), as_tag=True, options=LOSSLESS
        )
        frames = list(read_frames(path))
        assert frames[0].orientation == Orientation(degrees)
        np.testing.assert_allclose(frames[0].gray, image, atol=1)


@pytest.mark.parametrize(
    "suffix, codec, pixel_format, full_range",
    [
        (".mp4", "libx264", "yuv420p", False),  # what phones and webcams hand over
        (".mp4", "libx264", "yuv420p", True),  # the same, flagged full range
        (".mp4", "libx264", "yuvj420p", False),
        (".mkv", "libx264", "yuv422p", False),
        (".mp4", "libx264", "yuv444p", False),
        (".avi", "mjpeg", "yuvj420p", False),
        (".webm", "libvpx-vp9", "yuv420p", False),
        (".mp4", "libx264", "yuv420p10le", False),  # not 8-bit: through FFmpeg's converter
    ],
)
def test_read_frames_gray_is_ffmpegs_own_gray(tmp_path, suffix, codec, pixel_format, full_range):
    """read_frames reads the luma plane through a table instead of FFmpeg's slow converter; the
    pictures must be the converter's, value for value, whatever the format and range."""
    import av

    path = tmp_path / f"v{suffix}"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, pixel_format
        if full_range:
            stream.codec_context.color_range = 2
        for _ in range(4):
            rgb = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
        expected = [frame.to_ndarray(format="gray") for frame in decoded]
        seen = {(frame.format.name, int(frame.color_range)) for frame in decoded}
    frames = [frame.gray for frame in read_frames(path)]
    assert len(frames) == len(expected) == 4, seen
    for got, want in zip(frames, expected):
        assert got.shape == want.shape and got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)
