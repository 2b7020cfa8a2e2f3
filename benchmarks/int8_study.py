"""Quantised weights (int8) for the CPU runtime, as an experiment: what they gain in speed and what they
cost in answers, against the fp32 ONNX Runtime graphs the service runs and PyTorch's bf16.

The checkpoint's two ONNX graphs (training/runtime.py: the per-frame stage and the recurrence over a clip)
have their convolutions quantised statically by ONNX Runtime's own tool (QDQ: int8 weights, uint8
activations, calibrated on real faces), and every variant reads the same real faces, each held still as a clip:

* speed: ms per clip of the recurrence at batch 1 (a live session's) and 32 (an upload's), and of the
  per-frame stage per frame, median of --rounds, interleaved;
* answers: the share of faces whose class is fp32's, and the accuracy against the annotators' majority,
  on faces the calibration never saw.

The faces are FER+'s (`--split FERPLUS_DIR/FER2013Valid`: the first --calibrate faces calibrate, the next
--faces are read), found and aligned by the service's detector and crop (training/data.py, load_ferplus).

With --talking, also what int8 does to video answers: the held-out London people's photo-real talking videos
(benchmarks/london_eval.py --talking: calm, and holding each expression; --people N: the first N), each through
the whole pipeline (analyse_video) on ONNX Runtime, fp32 then the int8 graphs in the same Predictor: the videos
whose answer is the same, right answers of each, and the share of equal clip labels.

    python benchmarks/int8_study.py --split FERPLUS_DIR/FER2013Valid [--model training/models/default]
                                    [--calibrate 300] [--faces 1000] [--rounds 5] [--threads 1]
                                    [--talking [--people 8]]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.bundled import SERVED_CHECKPOINT
from training.checkpoint import checkpoint_folder, crop_config, load_checkpoint
from training.data import load_ferplus
from training.runtime import (
    FOLDER,
    cache_folder,
    int8_files,
    network_files,
    network_key,
    network_runtime,
    quantise_network,
    session,
)


def still_clips(videos) -> np.ndarray:
    """(N, 8, S, S) uint8: each face held still for a clip."""
    return np.stack([np.repeat(v.frames[:1], 8, axis=0) for v in videos])


def timed(fn, rounds: int) -> float:
    fn()  # warm
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", required=True, help="a FER+ split folder (FER2013Valid: never Test for a choice)")
    ap.add_argument("--model", default=str(SERVED_CHECKPOINT))
    ap.add_argument("--calibrate", type=int, default=300, help="faces that calibrate the activations' ranges")
    ap.add_argument("--faces", type=int, default=1000, help="faces read by every variant (after the calibration's)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--per-channel", action="store_true", help="int8 weights per output channel, not per tensor")
    ap.add_argument("--talking", action="store_true", help="also the held-out London talking videos' answers")
    ap.add_argument("--people", type=int, default=None, help="with --talking: the first N held-out people")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model, config = load_checkpoint(args.model)
    model.eval()
    # the service's own exports (made into the cache if the checkpoint has none), as the service finds them
    folders = (checkpoint_folder(args.model) / FOLDER, cache_folder())
    network_runtime(model, config, folders[:1], "onnx", torch.device("cpu"))  # made into the cache if missing
    names = network_files(network_key(config))
    folder = next(f for f in folders if all((f / n).is_file() for n in names))
    frame_path, clip_path = folder / names[0], folder / names[1]
    videos = load_ferplus(args.split, crop_config(config), classes=tuple(config["classes"]), progress=False).videos
    calib, test = videos[: args.calibrate], videos[args.calibrate : args.calibrate + args.faces]
    y = np.array([v.label for v in test])

    # the runtime's own quantiser (what `python -m training export --int8` runs), into a folder of its own
    tmp = Path(tempfile.mkdtemp(prefix="ramfer-int8-"))
    key = network_key(config)
    for name in names:
        shutil.copy(folder / name, tmp / name)
    quantise_network(tmp, key, still_clips(calib), "the study's calibration faces", per_channel=args.per_channel)
    q_frame, q_clip = (tmp / name for name in int8_files(key))
    sessions = {
        "fp32 (ONNX Runtime, served)": (session(frame_path, args.threads), session(clip_path, args.threads)),
        "int8 (ONNX Runtime, QDQ)": (session(q_frame, args.threads), session(q_clip, args.threads)),
    }

    frames = still_clips(test)[:, 0][:, None]
    answers, speed = {}, {}
    for name, (sf, sc) in sessions.items():
        logits = []
        for b in range(0, len(frames), 64):
            f = sf.run(None, {"frames": frames[b : b + 64]})[0]
            logits.append(sc.run(None, {"features": np.repeat(f[:, None], 8, axis=1)})[0])
        answers[name] = np.concatenate(logits).argmax(1)
        f1 = sf.run(None, {"frames": frames[:32]})[0]
        c32, c1 = np.repeat(f1[:, None], 8, axis=1), np.repeat(f1[:1, None], 8, axis=1)
        speed[name] = (
            1000 * timed(lambda: sf.run(None, {"frames": frames[:256]}), args.rounds) / 256,  # noqa: B023  called within this iteration
            1000 * timed(lambda: sc.run(None, {"features": c1}), args.rounds),  # noqa: B023  called within this iteration
            1000 * timed(lambda: sc.run(None, {"features": c32}), args.rounds) / 32,  # noqa: B023  called within this iteration
        )
    # PyTorch bf16, the recurrence as the service runs batches of clips on a CPU with native bf16
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        tf = model.frame_features(torch.from_numpy(frames[:32]))
        t32, t1 = tf[:, None].repeat(1, 8, 1, 1, 1), tf[:1, None].repeat(1, 8, 1, 1, 1)
        speed["PyTorch bf16"] = (
            1000 * timed(lambda: model.frame_features(torch.from_numpy(frames[:256])), args.rounds) / 256,
            1000 * timed(lambda: model.forward_features(t1), args.rounds),
            1000 * timed(lambda: model.forward_features(t32), args.rounds) / 32,
        )
        answers["PyTorch bf16"] = np.concatenate(
            [
                model.forward_features(
                    model.frame_features(torch.from_numpy(frames[b : b + 64]))[:, None].repeat(1, 8, 1, 1, 1)
                )
                .logits.float()
                .argmax(1)
                .numpy()
                for b in range(0, len(frames), 64)
            ]
        )

    ref = answers["fp32 (ONNX Runtime, served)"]
    print(
        f"{config.get('name')} on {len(test)} FER+ faces of {Path(args.split).name} (calibrated on {len(calib)} others), "
        f"{args.threads} thread(s), median of {args.rounds}"
    )
    print("| variant | frame stage ms/frame | recurrence ms/clip, batch 1 | batch 32 | answers = fp32 | accuracy |")
    print("|---|---|---|---|---|---|")
    for name in answers:
        fs, c1, c32 = speed[name]
        print(
            f"| {name} | {fs:.3f} | {c1:.2f} | {c32:.2f} | {100 * (answers[name] == ref).mean():.1f} % | "
            f"{100 * (answers[name] == y).mean():.1f} % |"
        )
    if args.talking:
        talking(args.model, (q_frame, q_clip), args.people)


def talking(model_dir: str, int8_paths: tuple[Path, Path], people: int | None) -> None:
    """Every held-out talking video through analyse_video twice, fp32 and int8 ONNX Runtime graphs."""

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from london_eval import talking_videos

    from service.pipeline import Predictor, analyse_video
    from service.settings import Settings
    from training.synthesis.london import find_london, list_identities, split_identities

    london = str(find_london(None))
    _, held = split_identities(list_identities(london), 0)
    predictor = Predictor(model_dir, runtime="onnx")
    fp32_sessions = (predictor.network.frame, predictor.network.clip)
    int8_sessions = tuple(session(p) for p in int8_paths)
    settings = Settings(model_dir=Path(model_dir))
    tmp = Path(tempfile.mkdtemp(prefix="ramfer-int8-talking-"))
    rows = []
    try:
        for face_id, want, video in talking_videos(london, held[:people], tmp, (0.6, 1.0), 1, False):
            answers = []
            for sessions in (fp32_sessions, int8_sessions):
                predictor.network.frame, predictor.network.clip = sessions
                result = analyse_video(video, predictor, settings)
                answers.append((result["expression"], [c["label"] for c in result["clips"] if c["face"]]))
            rows.append((face_id, want, answers))
            video.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    same = sum(a[0][0] == a[1][0] for _, _, a in rows)
    right = [sum(a[k][0] == want for _, want, a in rows) for k in (0, 1)]
    pairs = [(x, y) for _, _, a in rows for x, y in zip(a[0][1], a[1][1])]
    print(
        f"\n{len(rows)} held-out London talking videos ({len(held[:people])} people), whole pipeline on ONNX Runtime:"
    )
    print("| graphs | right | same answer as fp32 | clip labels = fp32 |\n|---|---|---|---|")
    print(f"| fp32 | {right[0]} / {len(rows)} | - | - |")
    print(
        f"| int8 | {right[1]} / {len(rows)} | {same} / {len(rows)} | "
        f"{100 * sum(x == y for x, y in pairs) / max(len(pairs), 1):.1f} % of {len(pairs)} |"
    )
    for face_id, want, a in rows:
        if a[0][0] != a[1][0]:
            print(f"differs: {face_id} {want}: fp32 {a[0][0]}, int8 {a[1][0]}")


if __name__ == "__main__":
    main()
