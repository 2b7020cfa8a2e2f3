"""The model stage of a real video, four ways, and whether they agree.

Takes the face crops of a video (the pipeline's own preprocessing), cuts the clips, and times
  plain:   every clip encoded on its own, fp32                     (the reference)
  shared:  each frame's features once, gathered into clips, fp32   (what the service does)
  bf16:    plain under bf16 autocast
  shared+bf16                                                      (the PyTorch path's default)
  onnx:    shared, on ONNX Runtime (fp32; RAMFER_INFERENCE_RUNTIME's CPU default where onnxruntime is installed)
  shared+bf16+flip: each clip and its mirror image, averaged       (RAMFER_FLIP_AVERAGE: not a speed-up but
                    a change of answer, so its agreement columns say how often it answers otherwise)
interleaved round by round; prints ms per video, clips/s, the speed-up over plain, and the
share of clips whose label matches plain's (the bar for keeping an optimisation: >= 99 %,
and the same vote). With --clip-batches, also the recurrence alone (Predictor.score of a batch
of clips' features) at each batch size on PyTorch fp32, PyTorch bf16 and ONNX Runtime: where
bf16 overtakes ONNX Runtime sets training/runtime.py's BF16_CLIPS_FROM.

    python benchmarks/model_stage.py [--video V] [--seconds 20] [--rounds 5] [--device cpu] [--clip-batches 1,2,4,8,32]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from service.pipeline import Predictor
from service.settings import DEFAULT_MODEL_DIR
from training.clips import clip_indices, majority_vote
from training.data import preprocess_video_file
from training.device import pick_device


def run(pred: Predictor, crops: np.ndarray, clips: np.ndarray, shared: bool) -> np.ndarray:
    B = pred.batch_size
    out = []
    if shared:
        feats = torch.cat([pred.features(crops[i : i + 4 * B]) for i in range(0, len(crops), 4 * B)])
        for b in range(0, len(clips), B):
            out.append(pred.score(feats[torch.from_numpy(clips[b : b + B])])[0])
    else:
        for b in range(0, len(clips), B):
            out.append(pred.predict(crops[clips[b : b + B]])[0])
    return np.concatenate(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", default=None)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--device", default=None)
    ap.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    ap.add_argument(
        "--clip-batches", default=None, metavar="B,B,...", help="also time the recurrence alone at these batch sizes"
    )
    ap.add_argument("--threads", type=int, default=None, help="torch's (and ONNX Runtime's) threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.video:
        video = Path(args.video)
    else:
        from videos import astronaut_frames, write_video

        video = write_video(
            Path(tempfile.mkdtemp()) / "face.mp4", astronaut_frames(int(args.seconds * 30), zoom=(0.8, 1.3))
        )
    ways = {
        "plain": (False, False, False, "torch"),
        "shared": (False, True, False, "torch"),
        "bf16": (True, False, False, "torch"),
        "shared+bf16": (True, True, False, "torch"),
        "shared+bf16+flip": (True, True, True, "torch"),
        "onnx": (False, True, False, "onnx"),
    }  # (bf16, shared, flip, runtime)
    if pick_device(args.device).type != "cpu":
        del ways["onnx"]  # ONNX Runtime is the CPU's path
    preds = {
        (b, f, r): Predictor(args.model, args.device, 32, bf16=b, flip_average=f, runtime=r)
        for b, _, f, r in ways.values()
    }
    crops = preprocess_video_file(video, preds[False, False, "torch"].crop, max_frames=100_000)
    clips = clip_indices(len(crops))
    times = {w: [] for w in ways}
    probs = {}
    with torch.inference_mode():
        for w, (bf16, shared, flip, rt) in ways.items():  # warm-up
            probs[w] = run(preds[bf16, flip, rt], crops, clips, shared)
        for _ in range(args.rounds):
            for w, (bf16, shared, flip, rt) in ways.items():
                start = time.perf_counter()
                run(preds[bf16, flip, rt], crops, clips, shared)
                if preds[bf16, flip, rt].device.type == "cuda":
                    torch.cuda.synchronize()
                times[w].append(time.perf_counter() - start)
    K = probs["plain"].shape[1]
    ref_labels = probs["plain"].argmax(1)
    ref_vote = majority_vote(ref_labels, probs["plain"], K)[0]
    dev = preds[False, False, "torch"].device
    print(
        f"# {video.name}: {len(crops)} frames, {len(clips)} clips; {dev}, {torch.get_num_threads()} threads, "
        f"bf16 {'native' if preds[True, False, 'torch'].bf16 else 'unavailable (ran fp32)'}; median of {args.rounds} rounds"
    )
    print(
        "| model stage | ms per video | clips/s | video frames/s | vs plain | clip labels = plain | vote = plain | max prob. diff |"
    )
    print("|---|---|---|---|---|---|---|---|")
    base = statistics.median(times["plain"])
    for w in ways:
        t = statistics.median(times[w])
        labels = probs[w].argmax(1)
        same = (labels == ref_labels).mean()
        vote = majority_vote(labels, probs[w], K)[0] == ref_vote
        diff = np.abs(probs[w] - probs["plain"]).max()
        print(
            f"| {w} | {1000 * t:.0f} | {len(clips) / t:.0f} | {len(crops) / t:.0f} | {base / t:.2f}x | {100 * same:.1f} % | {vote} | {diff:.4f} |"
        )
    if args.clip_batches:
        scorers = {
            "torch fp32": ("shared", preds[False, False, "torch"]),
            "torch bf16": ("shared+bf16", preds[True, False, "torch"]),
        }
        if "onnx" in ways:
            scorers["onnx"] = ("onnx", preds[False, False, "onnx"])
        clip_batches(scorers, crops, clips, [int(b) for b in args.clip_batches.split(",")], args.rounds)


def clip_batches(scorers: dict, crops: np.ndarray, clips: np.ndarray, batches: list[int], rounds: int) -> None:
    """ms per clip of the recurrence alone at each batch size, each scorer on its own features, interleaved."""
    feats = {name: pred.features(crops[: clips[max(batches) - 1][-1] + 1]) for name, (_, pred) in scorers.items()}
    times = {(name, b): [] for name in scorers for b in batches}
    with torch.inference_mode():
        for r in range(rounds + 1):  # the first round warms up
            for b in batches:
                for name, (_, pred) in scorers.items():
                    batch = feats[name][torch.from_numpy(clips[:b])]
                    start = time.perf_counter()
                    pred.score(batch)
                    if r:
                        times[name, b].append(1000 * (time.perf_counter() - start) / b)
    print()
    print(f"the recurrence alone (Predictor.score), ms per clip, median of {rounds} rounds")
    print("| clips a batch | " + " | ".join(scorers) + " |")
    print("|---|" + "---|" * len(scorers))
    for b in batches:
        print(f"| {b} | " + " | ".join(f"{statistics.median(times[name, b]):.2f}" for name in scorers) + " |")


if __name__ == "__main__":
    main()
