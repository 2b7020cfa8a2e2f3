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
network's own reading. --fit-temperature fits T on the split's clips (Valid) and keeps it only where
it lowers the NLL beyond its noise (training/calibration.chosen_temperature; else T = 1). --write MODEL_DIR
records in the checkpoint (config.json and its card) what this split chose: that T, and with
several --neutral-bias values the one read most accurately (the smallest of equals), with each
value's accuracy, as the service's prior for neutral.

--attention measures where RAM looked: for each class, the mean of its faces' last-step maps
(on the absolute 0..1 scale the service draws) and how concentrated they are (the share of a map's
mass in its top 4 of 36 cells; 4/36 = 11 % is a flat map); whether the answer uses the map at all
(each face read again with RAM's map replaced by its own mean: the same overall gain, nothing of
where; and by zero: no RAM residual); and the same concentration for FC's evidence of its answer
(ExpressionNet.evidence, its positive part: the picture the service draws as `peak_evidence`).
--sheet draws a contact sheet like the paper's Fig. 4 (per class, the first six faces read right,
each as face, under RAM's map, under the evidence).

    python benchmarks/ferplus_eval.py FERPLUS_DIR/FER2013Test [--model training/models/default]
                                      [--neutral-bias 0 1 2] [--fit-temperature] [--write MODEL_DIR]
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

from training.bundled import SERVED_CHECKPOINT
from training.calibration import MIN_GAIN_Z, apply_temperature, chosen_temperature, expected_calibration_error
from training.checkpoint import crop_config, load_checkpoint
from training.clips import shift_prior
from training.data import NEUTRAL, load_ferplus
from training.train import predict_videos

TOP_CELLS = 4


def clip_probabilities(model_dir, split_dir, limit: int | None = None):
    """(classes, the network's probabilities (N, K) at T = 1, majority labels (N,), config, faces (N, S, S))
    of a FER+ split."""
    model, config = load_checkpoint(model_dir)
    classes = tuple(config["classes"])
    data = load_ferplus(split_dir, crop_config(config), classes=classes, progress=False)
    videos = data.videos[:limit] if limit else data.videos
    preds = predict_videos(model, videos, torch.device("cpu"), batch_size=128)
    return (
        list(classes),
        np.stack([p.clip_probs[0] for p in preds]),
        np.array([v.label for v in videos]),
        config,
        np.stack([v.frames[0] for v in videos]),
    )


def concentration(maps: np.ndarray) -> np.ndarray:
    """Each map's share of its mass in its TOP_CELLS highest cells."""
    flat = maps.reshape(len(maps), -1)
    return np.sort(flat, axis=1)[:, -TOP_CELLS:].sum(1) / np.maximum(flat.sum(1), 1e-9)


def where_it_looked(model_dir, split_dir, limit: int | None = None) -> dict[str, np.ndarray]:
    """Per face of a split (its one still clip): RAM's last-step map (N, h, w), FC's evidence for its answer
    (N, h, w), the answer, and the answer with RAM's map replaced by its mean and by zero (N,)."""
    from training.train import clips_of, gather_clips

    model, config = load_checkpoint(model_dir)
    model.eval()
    videos = load_ferplus(split_dir, crop_config(config), classes=tuple(config["classes"]), progress=False).videos[
        :limit
    ]
    out: dict[str, list] = {"maps": [], "evidence": [], "answer": [], "mean_map": [], "no_map": []}
    with torch.no_grad():
        for b in range(0, len(videos), 128):
            clips = gather_clips(videos, [(i, clips_of(videos[i])[0]) for i in range(b, min(b + 128, len(videos)))])
            B, T = clips.shape[:2]
            head, _, maps = model.head_features(model.frame_features(clips.flatten(0, 1)).unflatten(0, (B, T)))
            m = maps[:, -1]  # (B, h, w)
            g = head / (1 + m[:, None])  # the features before RAM's residual (1 + M) g
            k = model.fc(head.flatten(1)).argmax(1)
            out["maps"].append(m)
            out["evidence"].append(model.evidence_from(head, k))
            out["answer"].append(k)
            out["mean_map"].append(model.fc((g * (1 + m.mean((1, 2), keepdim=True)[:, None])).flatten(1)).argmax(1))
            out["no_map"].append(model.fc(g.flatten(1)).argmax(1))
    return {name: torch.cat(v).numpy() for name, v in out.items()}


def attention_report(classes: list[str], looked: dict[str, np.ndarray], y: np.ndarray) -> dict:
    maps, evidence = looked["maps"], np.clip(looked["evidence"], 0, None)
    conc, ev_conc = concentration(maps), concentration(evidence)
    rows = {
        c: {
            "faces": int((y == i).sum()),
            "mean": round(float(maps[y == i].mean()), 3),
            "max": round(float(maps[y == i].max(axis=(1, 2)).mean()), 3),
            "top_share": round(float(conc[y == i].mean()), 3),
            "evidence_top_share": round(float(ev_conc[y == i].mean()), 3),
        }
        for i, c in enumerate(classes)
        if (y == i).any()
    }
    print(f"\nwhere it looked (last step; flat: top-{TOP_CELLS} share {TOP_CELLS / maps[0].size:.3f})")
    print(
        "| class | faces | RAM map mean | RAM map max | RAM top-cell share | evidence top-cell share |\n|---|---|---|---|---|---|"
    )
    for c, r in rows.items():
        print(
            f"| {c} | {r['faces']} | {r['mean']:.3f} | {r['max']:.3f} | {r['top_share']:.3f} | {r['evidence_top_share']:.3f} |"
        )
    answer = looked["answer"]
    uses = {
        way: {
            "answers_changed": round(float((looked[way] != answer).mean()), 4),
            "accuracy": round(float((looked[way] == y).mean()), 4),
        }
        for way in ("mean_map", "no_map")
    }
    uses["as_is"] = {"answers_changed": 0.0, "accuracy": round(float((answer == y).mean()), 4)}
    print("\ndoes the answer use RAM's map? | answers changed | accuracy |\n|---|---|---|")
    for way, name in (
        ("as_is", "as served"),
        ("mean_map", "map replaced by its mean"),
        ("no_map", "map replaced by 0"),
    ):
        print(f"| {name} | {100 * uses[way]['answers_changed']:.1f} % | {100 * uses[way]['accuracy']:.1f} % |")
    return {"per_class": rows, "map_used": uses}


def contact_sheet(
    path: Path,
    classes: list[str],
    faces: np.ndarray,
    maps: np.ndarray,
    evidence: np.ndarray,
    p: np.ndarray,
    y: np.ndarray,
    per_class: int = 6,
) -> None:
    import cv2

    from training.visualize import evidence_overlay, heat_overlay, strip

    rows = []
    for i, c in enumerate(classes):
        right = np.flatnonzero((y == i) & (p.argmax(1) == i))[:per_class]
        if len(right) == 0:
            continue
        cells = []
        for k in right:
            cells += [
                heat_overlay(faces[k], np.zeros_like(maps[k]), 96, alpha=0.0),
                heat_overlay(faces[k], maps[k], 96),
                evidence_overlay(faces[k], evidence[k], 96),
            ]
        cells += [np.full((96, 96, 3), 255, np.uint8)] * (3 * (per_class - len(right)))
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
    return {
        "faces": len(y),
        "accuracy": round(float((pred == y).mean()), 4),
        "mean_class_accuracy": round(
            float(np.mean([r["right"] / r["faces"] for r in per_class.values() if r["faces"]])), 4
        ),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def print_report(name: str, classes: list[str], r: dict) -> None:
    print(
        f"\n{name}: {r['accuracy']:.1%} of {r['faces']} faces (mean of the classes' accuracies {r['mean_class_accuracy']:.1%})"
    )
    print("| class | right | faces | accuracy |\n|---|---|---|---|")
    for c, row in r["per_class"].items():
        print(f"| {c} | {row['right']} | {row['faces']} | {row['right'] / max(row['faces'], 1):.1%} |")
    print("\nconfusion (rows: the annotators' majority, columns: the model's answer)")
    print("| | " + " | ".join(c[:4] for c in classes) + " |")
    print("|---" * (len(classes) + 1) + "|")
    for c, row in zip(classes, r["confusion"]):
        print(f"| {c} | " + " | ".join(str(n) for n in row) + " |")


def best_prior(readings: dict[str, dict]) -> float:
    """The prior for neutral read most accurately; among equals, the smallest (the nearest the network's own)."""
    return min((-r["accuracy"], float(b)) for b, r in readings.items())[1]


def write_choices(args, faces: int, out: dict) -> None:
    """Record in args.write's config.json and card what this split chose: the fitted temperature (with
    --fit-temperature) and the prior for neutral (with more than one --neutral-bias)."""
    from training.checkpoint import read_config, write_record

    split = Path(args.split).name
    cfg = read_config(args.write)
    if "fitted_temperature" in out:
        fitted, chosen, z = out["fitted_temperature"], out["chosen_temperature"], out["fit_z"]
        kept = "kept" if chosen != 1.0 else f"not kept (its gain under {MIN_GAIN_Z:g} standard errors: T = 1)"
        cfg["calibration"] = {
            "temperature": chosen,
            "fitted_on": f"{faces} FER+ {split} faces, each as a still clip: T = {fitted:.3f} fitted, its NLL gain "
            f"{z:.1f} standard errors, {kept} "
            f"(python benchmarks/ferplus_eval.py FERPLUS_DIR/{split} --fit-temperature --write MODEL_DIR)",
            "ece": {
                f"FER+ {split}": {
                    "before": out["ece"]["T=1"],
                    "after": out["ece"][f"T={fitted:.3f} (fitted here)" if chosen != 1.0 else "T=1"],
                    "clips": faces,
                }
            },
        }
        print(f"recorded T = {chosen:g} in {args.write}/config.json")
    if len(out["readings"]) > 1:
        bias = best_prior(out["readings"])
        tried = ", ".join(f"{r['accuracy']:.1%} at {float(b):g}" for b, r in out["readings"].items())
        values = " ".join(f"{float(b):g}" for b in out["readings"])
        cfg["decision"] = {
            "neutral_bias": bias,
            "chosen_on": f"FER+ {split}, each face as a still clip: {tried} of {faces} faces, the best chosen "
            f"(python benchmarks/ferplus_eval.py FERPLUS_DIR/{split} --model MODEL_DIR --neutral-bias {values} --write MODEL_DIR)",
        }
        print(f"recorded the prior for neutral {bias:g} in {args.write}/config.json")
    write_record(args.write, cfg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "split", help="a FER+ split folder: FER2013Valid (choices) or FER2013Test (reporting), with its label.csv"
    )
    ap.add_argument("--model", default=str(SERVED_CHECKPOINT))
    ap.add_argument(
        "--neutral-bias",
        type=float,
        nargs="+",
        default=[0.0],
        metavar="X",
        help="read each clip with neutral weighed by exp(X), as the service's RAMFER_NEUTRAL_BIAS does (default 0)",
    )
    ap.add_argument("--fit-temperature", action="store_true", help="fit the temperature on this split's clips")
    ap.add_argument(
        "--write",
        default=None,
        metavar="MODEL_DIR",
        help="record in this checkpoint the fitted T and, with several --neutral-bias, the best as its prior",
    )
    ap.add_argument("--attention", action="store_true", help="measure how concentrated RAM's maps are, per class")
    ap.add_argument("--sheet", default=None, help="with --attention: a contact sheet of faces under their maps (PNG)")
    ap.add_argument("--limit", type=int, default=None, help="the first N faces only (a quick look)")
    ap.add_argument("--json", default=None, help="write the figures and every face's probabilities here")
    args = ap.parse_args()

    start = time.perf_counter()
    classes, p, y, config, faces = clip_probabilities(args.model, args.split, args.limit)
    t = float((config.get("calibration") or {}).get("temperature", 1.0))
    print(f"{config.get('name', args.model)} on {args.split}: {len(y)} faces in {time.perf_counter() - start:.0f} s")
    out = {
        "model": config.get("name"),
        "weights_sha256": config.get("weights_sha256"),
        "split": str(args.split),
        "classes": classes,
        "temperature": t,
        "readings": {},
    }
    for bias in args.neutral_bias:
        q = shift_prior(p, classes.index(NEUTRAL), bias) if bias and NEUTRAL in classes else p
        r = report(classes, q, y)
        out["readings"][str(bias)] = r
        print_report(f"neutral bias {bias:g}", classes, r)
    ece = {
        "T=1": round(expected_calibration_error(p, y), 4),
        f"T={t:g}": round(expected_calibration_error(apply_temperature(p, t), y), 4),
    }
    if args.fit_temperature:
        chosen, fitted, z = chosen_temperature(p, y)
        ece[f"T={fitted:.3f} (fitted here)"] = round(expected_calibration_error(apply_temperature(p, fitted), y), 4)
        out["fitted_temperature"], out["chosen_temperature"], out["fit_z"] = (
            round(fitted, 4),
            round(chosen, 4),
            round(z, 2),
        )
        print(
            f"\nT fitted here: {fitted:.3f}, NLL gain {z:.1f} standard errors: {'kept' if chosen != 1.0 else 'T = 1 kept'}"
        )
    out["ece"] = ece
    if args.write:
        write_choices(args, len(y), out)
    if args.attention:
        looked = where_it_looked(args.model, args.split, args.limit)
        out["attention"] = attention_report(classes, looked, y)
        if args.sheet:
            contact_sheet(Path(args.sheet), classes, faces, looked["maps"], looked["evidence"], p, y)
            print(f"wrote {args.sheet}")
    print("\nexpected calibration error (10 bins): " + ", ".join(f"{k}: {v:.3f}" for k, v in ece.items()))
    if args.json:
        out["probabilities"] = np.round(p, 5).tolist()
        out["labels"] = y.tolist()
        Path(args.json).write_text(json.dumps(out))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
