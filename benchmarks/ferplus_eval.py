"""Real faces with real labels: a checkpoint on FER+ (Barsoum et al., ICMI 2016), each still as a clip.

FER+ is FER2013's 48 px web faces, each labelled by ten annotators in the served model's eight classes.
Every face is found and aligned by the service's own detector and crop (training/data.py,
`load_ferplus`; a face the detector misses is taken as the crop it already is), held still for a
clip's 8 frames and classified by the network: the clip's most probable class against the
annotators' majority (faces whose most-voted column is "unknown" or "not a face" left out, as
Barsoum et al. leave them). Prints the accuracy, each class's, the confusion matrix and the expected
calibration error (10 bins) at T = 1 and at the checkpoint's temperature.

Valid chooses (the temperature, the neutral prior); Test only reports. --neutral-bias X reads each
clip as the service would with that prior (training/clips.py, shift_prior); the default, 0, is the
network's own reading. --fit-temperature fits T on the split's clips (Valid) and, with --write,
records it in the checkpoint, as benchmarks/calibrate.py does for the London clips.

--attention measures where RAM looked: for each class, the mean of its faces' last-step maps
(on the absolute 0..1 scale the service draws) and how concentrated they are (the share of a map's
mass in its top 4 of 36 cells; 4/36 = 11 % is a flat map), and with --sheet draws a contact sheet
like the paper's Fig. 4 (per class, the first six faces read right, each under its map).

    python benchmarks/ferplus_eval.py FERPLUS_DIR/FER2013Test [--model training/models/default]
                                      [--neutral-bias 0 1 2] [--fit-temperature [--write MODEL_DIR]]
                                      [--attention [--sheet sheet.png]] [--json answers.json] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.bundled import SERVED_CHECKPOINT  # noqa: E402
from training.calibration import apply_temperature, expected_calibration_error, fit_temperature  # noqa: E402
from training.checkpoint import crop_config, load_checkpoint  # noqa: E402
from training.clips import shift_prior  # noqa: E402
from training.data import NEUTRAL, load_ferplus  # noqa: E402
from training.train import predict_videos  # noqa: E402


TOP_CELLS = 4


def clip_probabilities(model_dir, split_dir, limit: int | None = None, attention: bool = False):
    """(classes, the network's probabilities (N, K) at T = 1, majority labels (N,), config, faces (N, S, S),
    last-step attention maps (N, h, w) or None) of a FER+ split."""
    model, config = load_checkpoint(model_dir)
    classes = tuple(config["classes"])
    data = load_ferplus(split_dir, crop_config(config), classes=classes, progress=False)
    videos = data.videos[:limit] if limit else data.videos
    preds = predict_videos(model, videos, torch.device("cpu"), batch_size=128, keep_attention=attention)
    maps = np.stack([p.attention[0, -1] for p in preds]) if attention and preds[0].attention is not None else None
    return (list(classes), np.stack([p.clip_probs[0] for p in preds]), np.array([v.label for v in videos]), config,
            np.stack([v.frames[0] for v in videos]), maps)


def concentration(maps: np.ndarray) -> np.ndarray:
    """Each map's share of its mass in its TOP_CELLS highest cells."""
    flat = maps.reshape(len(maps), -1)
    return np.sort(flat, axis=1)[:, -TOP_CELLS:].sum(1) / np.maximum(flat.sum(1), 1e-9)


def attention_report(classes: list[str], maps: np.ndarray, y: np.ndarray) -> dict:
    conc = concentration(maps)
    rows = {c: {"faces": int((y == i).sum()), "mean": round(float(maps[y == i].mean()), 3), "max": round(float(maps[y == i].max(axis=(1, 2)).mean()), 3),
                "top_share": round(float(conc[y == i].mean()), 3)} for i, c in enumerate(classes) if (y == i).any()}
    print(f"\nattention (last step; flat: top-{TOP_CELLS} share {TOP_CELLS / maps[0].size:.3f})")
    print("| class | faces | map mean | map max | top-cell share |\n|---|---|---|---|---|")
    for c, r in rows.items():
        print(f"| {c} | {r['faces']} | {r['mean']:.3f} | {r['max']:.3f} | {r['top_share']:.3f} |")
    return rows


def contact_sheet(path: Path, classes: list[str], faces: np.ndarray, maps: np.ndarray, p: np.ndarray, y: np.ndarray, per_class: int = 6) -> None:
    import cv2

    from training.visualize import heat_overlay, strip

    rows = []
    for i, c in enumerate(classes):
        right = np.flatnonzero((y == i) & (p.argmax(1) == i))[:per_class]
        if len(right) == 0:
            continue
        cells = [heat_overlay(faces[k], maps[k], 96) for k in right]
        cells += [np.full((96, 96, 3), 255, np.uint8)] * (per_class - len(cells))
        label = np.full((96, 110, 3), 255, np.uint8)
        cv2.putText(label, c, (4, 52), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(strip([label, *cells]))
    cv2.imwrite(str(path), np.vstack(rows))


def report(classes: list[str], p: np.ndarray, y: np.ndarray) -> dict:
    pred = p.argmax(1)
    k = len(classes)
    confusion = np.zeros((k, k), int)
    np.add.at(confusion, (y, pred), 1)
    per_class = {c: {"right": int(confusion[i, i]), "faces": int(confusion[i].sum())} for i, c in enumerate(classes)}
    return {"faces": len(y), "accuracy": round(float((pred == y).mean()), 4),
            "mean_class_accuracy": round(float(np.mean([r["right"] / r["faces"] for r in per_class.values() if r["faces"]])), 4),
            "per_class": per_class, "confusion": confusion.tolist()}


def print_report(name: str, classes: list[str], r: dict) -> None:
    print(f"\n{name}: {r['accuracy']:.1%} of {r['faces']} faces (mean of the classes' accuracies {r['mean_class_accuracy']:.1%})")
    print("| class | right | faces | accuracy |\n|---|---|---|---|")
    for c, row in r["per_class"].items():
        print(f"| {c} | {row['right']} | {row['faces']} | {row['right'] / max(row['faces'], 1):.1%} |")
    print("\nconfusion (rows: the annotators' majority, columns: the model's answer)")
    print("| | " + " | ".join(c[:4] for c in classes) + " |")
    print("|---" * (len(classes) + 1) + "|")
    for c, row in zip(classes, r["confusion"]):
        print(f"| {c} | " + " | ".join(str(n) for n in row) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("split", help="a FER+ split folder: FER2013Valid (choices) or FER2013Test (reporting), with its label.csv")
    ap.add_argument("--model", default=str(SERVED_CHECKPOINT))
    ap.add_argument("--neutral-bias", type=float, nargs="+", default=[0.0], metavar="X",
                    help="read each clip with neutral weighed by exp(X), as the service's NEUTRAL_BIAS does (default 0)")
    ap.add_argument("--fit-temperature", action="store_true", help="fit the temperature on this split's clips")
    ap.add_argument("--write", default=None, metavar="MODEL_DIR", help="with --fit-temperature: record T in this checkpoint")
    ap.add_argument("--attention", action="store_true", help="measure how concentrated RAM's maps are, per class")
    ap.add_argument("--sheet", default=None, help="with --attention: a contact sheet of faces under their maps (PNG)")
    ap.add_argument("--limit", type=int, default=None, help="the first N faces only (a quick look)")
    ap.add_argument("--json", default=None, help="write the figures and every face's probabilities here")
    args = ap.parse_args()

    start = time.perf_counter()
    classes, p, y, config, faces, maps = clip_probabilities(args.model, args.split, args.limit, args.attention)
    t = float((config.get("calibration") or {}).get("temperature", 1.0))
    print(f"{config.get('name', args.model)} on {args.split}: {len(y)} faces in {time.perf_counter() - start:.0f} s")
    out = {"model": config.get("name"), "weights_sha256": config.get("weights_sha256"), "split": str(args.split),
           "classes": classes, "temperature": t, "readings": {}}
    for bias in args.neutral_bias:
        q = shift_prior(p, classes.index(NEUTRAL), bias) if bias and NEUTRAL in classes else p
        r = report(classes, q, y)
        out["readings"][str(bias)] = r
        print_report(f"neutral bias {bias:g}", classes, r)
    ece = {"T=1": round(expected_calibration_error(p, y), 4),
           f"T={t:g}": round(expected_calibration_error(apply_temperature(p, t), y), 4)}
    if args.fit_temperature:
        fitted = fit_temperature(p, y)
        ece[f"T={fitted:.3f} (fitted here)"] = round(expected_calibration_error(apply_temperature(p, fitted), y), 4)
        out["fitted_temperature"] = round(fitted, 4)
        if args.write:
            from training.checkpoint import read_config, write_record

            cfg = read_config(args.write)
            cfg["calibration"] = {
                "temperature": round(fitted, 4),
                "fitted_on": f"{len(y)} FER+ {Path(args.split).name} faces, each as a still clip: "
                             f"python benchmarks/ferplus_eval.py FERPLUS_DIR/{Path(args.split).name} --fit-temperature --write MODEL_DIR",
                "ece": {f"FER+ {Path(args.split).name}": {"before": ece["T=1"], "after": ece[f"T={fitted:.3f} (fitted here)"], "clips": len(y)}},
            }
            write_record(args.write, cfg)
            print(f"recorded T = {fitted:.4f} in {args.write}/config.json")
    out["ece"] = ece
    if maps is not None:
        out["attention"] = attention_report(classes, maps, y)
        if args.sheet:
            contact_sheet(Path(args.sheet), classes, faces, maps, p, y)
            print(f"wrote {args.sheet}")
    print("\nexpected calibration error (10 bins): " + ", ".join(f"{k}: {v:.3f}" for k, v in ece.items()))
    if args.json:
        out["probabilities"] = np.round(p, 5).tolist()
        out["labels"] = y.tolist()
        Path(args.json).write_text(json.dumps(out))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
