"""python -m training {synth,cv,train,pack,card,export}: data, cross-validation, the servable checkpoint, packs, model cards and ONNX exports."""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from training.checkpoint import SERVED_CHECKPOINT
from training.data import CLASSES, CLASSES_WITH_NEUTRAL

log = logging.getLogger("training")
TRAINING_STATE = "training-state.pt"  # train --resumable: the run's state after its last finished epoch
TRAIN_JUDGED = 400  # training videos `train` votes for the card's train_video_accuracy


# What a run's recipe did before these options were recorded (results.json written earlier lacks them)
RECIPE_BEFORE_ITS_OPTIONS = {"balance": "loss", "label_smoothing": 0.0, "min_steps": 0, "targets": "votes"}


def add_recipe_args(p: argparse.ArgumentParser) -> None:
    from training.train import BALANCE, TARGETS, TrainConfig

    d = TrainConfig()
    p.add_argument(
        "--data",
        required=True,
        action="append",
        help="a CK+ tree (cohn-kanade-images/, Emotion/, ...), CREMA-D videos, class folders of videos or of images, "
        "or a FER+ split folder (FER2013Train with its label.csv); repeat to combine",
    )
    p.add_argument("--neutral", action="store_true", help="add an 8th class, neutral (the paper's protocol has 7)")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"default {d.epochs}, or more where an epoch is short (see --min-steps); given: exactly this many",
    )
    p.add_argument(
        "--min-steps",
        type=int,
        default=None,
        metavar="N",
        help=f"without --epochs, epochs are added until training takes at least N optimiser steps "
        f"(default {d.min_steps}: a set of short sequences or few videos gets the steps the recipe "
        f"was made with; docs/training.md)",
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument(
        "--clips-per-video", type=int, default=d.clips_per_video, help="clips drawn from each video per epoch"
    )
    p.add_argument(
        "--shares",
        type=float,
        nargs="+",
        default=None,
        metavar="X",
        help="each --data's share of an epoch's clips, in the order of the --data options (relative weights; "
        "default: as many clips as each set's videos give)",
    )
    p.add_argument(
        "--epoch-clips",
        type=int,
        default=d.epoch_clips,
        metavar="N",
        help="clips in an epoch, in all (default: as many as the videos give, clips-per-video each)",
    )
    p.add_argument("--no-augment", action="store_true")
    p.add_argument(
        "--balance",
        choices=BALANCE,
        default=d.balance,
        help="how unequal classes are evened out: class weights in the loss (default), class-balanced "
        "drawing of each epoch's videos with an unweighted loss, or neither",
    )
    p.add_argument(
        "--label-smoothing",
        type=float,
        default=d.label_smoothing,
        metavar="X",
        help="label smoothing of both cross-entropies, the FC's and the RAM's (default %(default)s)",
    )
    p.add_argument("--targets", choices=TARGETS, default=d.targets, help="FER+ faces' vote shares or their majority")
    p.add_argument("--no-amp", action="store_true", help="train in fp32 even where bf16 is available")
    p.add_argument("--hidden", type=int, default=None, help="recurrent layers' channels (default: the model's)")
    p.add_argument(
        "--standardise",
        choices=("frame", "face"),
        default=None,
        help="which pixels each frame is standardised over: the whole crop (frame, the default) or the face "
        "ellipse with the rest zeroed (face): the backdrop then reaches the network only at the cheeks "
        "(training/model.py)",
    )
    add_input_size_arg(p)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda when present)")
    p.add_argument(
        "--cache", default=None, help="where preprocessed arrays are cached (default ~/.cache/ramfer or $RAMFER_CACHE)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network for training: the same recipe, a step ~1.6x faster on a bf16 CPU, "
        "after minutes of compiling (docs/performance.md)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--init",
        nargs="?",
        const=str(SERVED_CHECKPOINT),
        default=None,
        metavar="CHECKPOINT",
        help="start from a checkpoint's weights instead of from scratch (bare: the served training/models/default): "
        "every tensor whose name and shape fit, the per-class ones matched by class name; the crop "
        "must be the checkpoint's. Not the paper's protocol; results and model card record it",
    )


def add_input_size_arg(p: argparse.ArgumentParser) -> None:
    from training.faces import CropConfig

    # Both default to None ("not asked for"): with --init and neither given, the run makes the crops the
    # checkpoint was trained on (starting_point), since its weights fit no others.
    p.add_argument(
        "--input-size",
        type=int,
        default=None,
        metavar="PX",
        help=f"side of the gray face crops, the network's input (a multiple of 8; default {CropConfig.size}, "
        "or with --init the checkpoint's). The checkpoint records it and the service crops to match.",
    )
    p.add_argument(
        "--align",
        action="store_true",
        default=None,
        help="aligned crops: eyes level at a fixed place (from the detector's or CK+'s landmarks) instead of "
        "the face box's square (default: box crops, or with --init the checkpoint's); the checkpoint "
        "records it and the service crops to match",
    )


def crop_config(args):
    from training.faces import CropConfig

    return CropConfig(size=args.input_size or CropConfig.size, align=bool(getattr(args, "align", False)))


def model_overrides(args) -> dict:
    """ModelConfig fields the command line changes (only those, so results.json of default runs compare equal)."""
    from training.faces import CropConfig

    overrides = {"hidden_channels": args.hidden} if args.hidden else {}
    if args.input_size not in (None, CropConfig.size):
        overrides["input_size"] = args.input_size
    if getattr(args, "standardise", None) not in (None, "frame"):
        overrides["standardise"] = args.standardise
    return overrides


def recipe(args):
    from training.train import TrainConfig

    d = TrainConfig()
    if args.shares and len(args.shares) != len(args.data):
        raise SystemExit(
            f"--shares: {len(args.shares)} shares for {len(args.data)} --data sets (one each, in their order)"
        )
    min_steps = args.min_steps if args.min_steps is not None else (d.min_steps if args.epochs is None else 0)
    return TrainConfig(
        epochs=args.epochs or d.epochs,
        min_steps=min_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        clips_per_video=args.clips_per_video,
        augment=not args.no_augment,
        amp=not args.no_amp,
        seed=args.seed,
        balance=args.balance,
        label_smoothing=args.label_smoothing,
        shares=tuple(args.shares or ()),
        epoch_clips=args.epoch_clips,
        targets=args.targets,
    )


def load(args):
    from training.data import load_datasets

    start = time.perf_counter()
    classes = CLASSES_WITH_NEUTRAL if args.neutral else CLASSES
    dataset = load_datasets(
        args.data, crop_config(args), cache_dir=args.cache, classes=classes, progress=not args.quiet
    )
    log.info(
        "%s (%s layout): %d videos, %d subjects, %d frames, classes %s, loaded in %.1f s",
        dataset.root,
        dataset.layout,
        len(dataset.videos),
        len(set(dataset.subjects)),
        sum(len(v.frames) for v in dataset.videos),
        dataset.class_counts(),
        time.perf_counter() - start,
    )
    return dataset


def setup(args) -> torch.device:
    from training.device import pick_device

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    return pick_device(args.device)


def starting_point(args):
    """The --init checkpoint, read and checked against the run's crops before any data is loaded. A run
    that asks for no crops (neither --input-size nor --align) makes the checkpoint's."""
    from training.checkpoint import CheckpointError
    from training.warmstart import describe_crop, read_starting_point

    if args.init is None:
        return None
    asked = args.input_size is not None or args.align is not None
    try:
        start = read_starting_point(args.init, crop_config(args) if asked else None)
    except CheckpointError as e:
        raise SystemExit(f"--init: {e}") from None
    if not asked:  # every later crop_config(args) (loading, the checkpoint written) gives the checkpoint's
        args.input_size, args.align = start.crop.size, start.crop.align
        log.info("--init: making %s, the crops %s was trained on", describe_crop(start.crop), args.init)
    return start


def command_line() -> str:
    return "python -m training " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def background_photos(args) -> tuple[str, ...]:
    """--backgrounds' photographs (or $RAMFER_BACKGROUNDS_DIR's); none: procedural backdrops and textures only."""
    from training.synthesis.studio import background_photos as photos

    found = tuple(photos(args.backgrounds))
    if args.backgrounds and not found:
        sys.exit(f"--backgrounds {args.backgrounds}: no .jpg or .png photographs there")
    return found


def cmd_synth(args) -> None:
    start = time.perf_counter()
    studio = {"studio": args.studio, "backgrounds": background_photos(args) if args.studio else ()}
    if args.photoreal:
        from training.synthesis import london, photoreal_dataset

        try:
            ids = london.list_identities(london.find_london(args.photoreal))
        except london.LondonSetMissing as e:
            sys.exit(str(e))
        train_ids, held = london.split_identities(ids)
        # rendering is per identity: the default tree plus the --only-held-out tree is the --all-identities tree
        chosen = ids if args.all_identities else held if args.only_held_out else train_ids
        chosen = chosen[: args.people] if args.people else chosen
        if args.morphs:
            groups = london.london_groups(args.photoreal) if args.morph_balance else None
            chosen = london.morph_identities(chosen, args.morphs, seed=args.seed, groups=groups)
        people = set().union(*(london.london_people(f"L{i}") for i in chosen))
        if args.talking:
            summary = photoreal_dataset.write_talking_dataset(
                args.photoreal,
                Path(args.out),
                seed=args.seed,
                identities=chosen,
                calm=args.calm,
                progress=not args.quiet,
                workers=args.workers,
                **studio,
            )
        else:
            summary = photoreal_dataset.write_dataset(
                args.photoreal,
                Path(args.out),
                seed=args.seed,
                identities=chosen,
                smiles=args.smiles,
                faint=args.faint_smiles,
                progress=not args.quiet,
                workers=args.workers,
                **studio,
            )
        summary["left_out"] = sorted(set(ids) - people)
        (Path(args.out) / "README.txt").write_text(
            f"Photo-real expression sequences made by `{command_line()}` from the Face Research Lab London Set.\n"
            f"{london.ATTRIBUTION}\nLondon people not in this set: {', '.join(summary['left_out']) or 'none'}\n"
        )
    else:
        from training.synthesis import drawn_dataset

        if args.talking:
            summary = drawn_dataset.write_talking_dataset(
                Path(args.out),
                subjects=args.subjects,
                seed=args.seed,
                calm=args.calm,
                progress=not args.quiet,
                **studio,
            )
        else:
            summary = drawn_dataset.write_dataset(
                Path(args.out), subjects=args.subjects, seed=args.seed, progress=not args.quiet, **studio
            )
    log.info("wrote %s in %.1f s: %s", args.out, time.perf_counter() - start, summary)


def cmd_cv(args) -> None:
    from training.cv import cross_validate, make_folds, write_results
    from training.faces import CropConfig
    from training.model import VARIANTS
    from training.report import attention_png, confusion_png, markdown_table

    device = setup(args)
    start = starting_point(args)
    dataset = load(args)
    variants = list(VARIANTS) if args.variant == "all" else [args.variant]
    folds = make_folds(dataset.subjects, dataset.labels, args.folds, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = recipe(args)
    overrides = model_overrides(args)
    results = {
        "folds": int(folds.max() + 1),
        "data": {
            "root": dataset.root,
            "layout": dataset.layout,
            "videos": len(dataset.videos),
            "subjects": len(set(dataset.subjects)),
            "class_counts": dataset.class_counts(),
        },
        "command": command_line(),
        "seed": args.seed,
        "train": cfg.to_dict(),
        "model_overrides": overrides,
        "crop": crop_config(args).to_dict(),
        # null: every network trained from scratch, the paper's protocol; else the checkpoint they started from
        "init": None if start is None else {"checkpoint": start.path, "sha256": start.sha256},
        "device": str(device),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "fold_videos": np.bincount(folds).tolist(),
        "variants": {},
    }
    previous = out / "results.json"
    if previous.is_file():  # a run folder with other variants of the same experiment: add to it
        old = json.loads(previous.read_text())
        if isinstance(old.get("train"), dict):  # written before these options existed: the recipe did this then
            old["train"] = {**RECIPE_BEFORE_ITS_OPTIONS, **old["train"]}
        if "crop" not in old:  # nor the crop: box crops unless its command asked for aligned ones
            size = old.get("model_overrides", {}).get("input_size")
            old["crop"] = CropConfig(
                size=size or CropConfig.size, align="--align" in old.get("command", "").split()
            ).to_dict()
        same = all(
            old.get(k) == results[k] for k in ("folds", "data", "seed", "train", "model_overrides", "crop", "init")
        )
        if same:
            results["variants"] = {v: r for v, r in old["variants"].items() if v not in variants}
            log.info("adding to %s, which has %s", previous, ", ".join(results["variants"]) or "no variants")
        else:
            log.warning(
                "%s is another experiment (data, folds, seed, recipe, crops or --init differ): replacing it", previous
            )
    all_preds = {}
    for variant in variants:
        summary, preds = cross_validate(
            dataset,
            variant,
            folds,
            cfg,
            device,
            overrides,
            progress=not args.quiet,
            first_folds=args.first_folds,
            compiled=args.compile,
            start=start,
        )
        results["variants"][variant] = summary
        results["variants"] = {v: results["variants"][v] for v in VARIANTS if v in results["variants"]}  # Table 1 order
        all_preds[variant] = preds
        log.info(
            "%s: video accuracy %.4f, clip accuracy %.4f (%.1f min)",
            variant,
            summary["video_accuracy"],
            summary["clip_accuracy"],
            summary["train_seconds"] / 60,
        )
        write_results(out, results)  # after every variant, so a long run keeps what it has done
    (out / "table.md").write_text(markdown_table(results))
    confusion_png(out / "confusion.png", results)
    # Predictions of variants from an earlier run are not kept, so a run that adds variants draws
    # its own figure beside the first one rather than replacing it.
    earlier = [v for v in results["variants"] if v not in all_preds]
    attention_png(
        out / ("attention.png" if not earlier else f"attention-{'-'.join(all_preds)}.png"), dataset, all_preds
    )
    print(markdown_table(results))
    log.info("wrote %s", out)


def cmd_train(args) -> None:
    from training.checkpoint import describe_start, save_checkpoint
    from training.model import ExpressionNet, ModelConfig
    from training.train import fit, predict_videos
    from training.warmstart import start_from

    device = setup(args)
    start = starting_point(args)
    dataset = load(args)
    if args.london_fold is not None:
        dataset = without_london_fold(dataset, args.london, args.london_fold)
    cfg = recipe(args)
    overrides = model_overrides(args)
    # Seeded here, not only at setup: loading data that is not cached yet builds the face detector, whose
    # layers draw from torch's generator, so the network would start from other weights on a second run.
    torch.manual_seed(args.seed)
    model = ExpressionNet(ModelConfig(variant=args.variant, num_classes=len(dataset.classes), **overrides))
    init = None if start is None else start_from(model, start, dataset.classes)
    if init:
        log.info("%s", describe_start(init))
    state = Path(args.out) / TRAINING_STATE if args.resumable else None
    if state is not None:
        state.parent.mkdir(parents=True, exist_ok=True)
    report = fit(model, dataset.videos, cfg, device, progress=not args.quiet, compiled=args.compile, state_path=state)
    # A seeded sample of the training videos is judged, not all: voting every clip of the served set
    # (3,225 videos, talking ones 34 clips each) took 13 min of a 38-min fine-tune on 2 cores.
    judged = sorted(
        np.random.default_rng(args.seed).choice(
            len(dataset.videos), min(TRAIN_JUDGED, len(dataset.videos)), replace=False
        )
    )
    preds = predict_videos(model, [dataset.videos[i] for i in judged], device)
    train_acc = float(np.mean([p.label == dataset.videos[i].label for p, i in zip(preds, judged)]))
    metrics = {
        "train_video_accuracy": round(train_acc, 4),
        "train_videos_judged": len(judged),
        "final_loss": round(report["history"][-1]["loss"], 4),
    }
    if args.cv_results:
        cv = json.loads(Path(args.cv_results).read_text())
        r = cv["variants"].get(args.variant)
        if r:
            metrics |= {
                "cv_video_accuracy": round(r["video_accuracy"], 4),
                "cv_clip_accuracy": round(r["clip_accuracy"], 4),
                "cv_folds": cv["folds"],
                "cv_command": cv.get("command"),
            }
    record = {
        "name": Path(args.out).name,
        "command": command_line(),
        "seed": args.seed,
        "train": cfg.to_dict() | {"epochs_run": report["epochs"]},  # epochs_run > epochs: raised to min_steps
        "train_seconds": round(report["seconds"], 1),
        "trained_on": f"{report['device']} ({platform.processor() or platform.machine()}), torch {torch.__version__}, bf16 autocast {report['amp_bf16']}"
        + (", torch.compile" if report["compiled"] else ""),
        "data": {
            "root": dataset.root,
            "layout": dataset.layout,
            "videos": len(dataset.videos),
            "subjects": len(set(dataset.subjects)),
            "class_counts": dataset.class_counts(),
        },
        "data_description": args.data_description
        or f"{len(dataset.videos)} videos of {len(set(dataset.subjects))} subjects from `{dataset.root}` ({dataset.layout} layout).",
        "metrics": metrics,
        "init": init,  # None: trained from scratch
        "history": report["history"],
    }
    if args.licence:
        record["licences"] = "\n".join(f"* {t}" for t in args.licence)
    if args.limits:
        record["limits"] = args.limits
    save_checkpoint(args.out, model.cpu(), crop_config(args), dataset.classes, record)
    if state is not None:
        state.unlink(missing_ok=True)  # the checkpoint is written: nothing is left to go on from
    log.info("wrote %s: %s", args.out, metrics)


def without_london_fold(dataset, london_dir, fold: int):
    """The data set less the photo-real sequences of one fold's London people (london.split_identities),
    so benchmarks/london_eval.py --fold K can judge the model on people it never saw."""
    from training.data import Dataset
    from training.synthesis.london import (
        LondonSetMissing,
        find_london,
        list_identities,
        london_people,
        split_identities,
    )

    try:
        ids = list_identities(find_london(london_dir))
    except LondonSetMissing as e:
        raise SystemExit(f"--london-fold needs the London set to know its folds: {e}") from None
    held = set(split_identities(ids, fold)[1])
    kept = [v for v in dataset.videos if not london_people(v.subject) & held]  # a morph goes with either of its people
    dropped = set().union(*(london_people(v.subject) for v in dataset.videos)) & held
    log.info(
        "--london-fold %d: left out %d videos and stills of %d London people",
        fold,
        len(dataset.videos) - len(kept),
        len(dropped),
    )
    return Dataset(kept, dataset.classes, dataset.layout, f"{dataset.root} less London fold {fold}")


def cmd_pack(args) -> None:
    from training.data import save_pack

    dataset = load(args)
    path = save_pack(dataset, args.out, crop_config(args))
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)


def cmd_card(args) -> None:
    from training.checkpoint import read_config, write_record

    config = read_config(args.checkpoint)
    for item in args.metric:
        name, _, value = item.partition("=")
        config.setdefault("metrics", {})[name.strip()] = value.strip()
    if args.limits:
        config["limits"] = args.limits
    if args.neutral_bias is not None:
        config["decision"] = {"neutral_bias": args.neutral_bias, "chosen_on": args.chosen_on or "(not recorded)"}
    write_record(args.checkpoint, config)
    log.info("updated %s: %s", args.checkpoint, config.get("metrics"))


def cmd_export(args) -> None:
    """Everything the CPU's fast path runs for a checkpoint (its network's two graphs and the face detector's)
    written into CHECKPOINT_DIR/onnx/, where the service looks first, and older exports there removed; each
    file's largest difference from PyTorch on its check batches is logged. With --int8 DATA, also the network
    with int8 convolutions calibrated on DATA's faces (training/runtime.quantise_network); int8 exports of the
    same weights and code are kept when it is not given. The served checkpoint's are
    committed (training/models/default/onnx/): after a change to training/model.py or training/detector.py
    run it on training/models/default (tests/test_runtime.py fails until then). Here, not in training/runtime.py, which the detector imports:
    the command needs the checkpoint loader, and the loader's crops import the detector."""
    from training import detector
    from training.bundled import DETECTOR_WEIGHTS, checkpoint_folder
    from training.checkpoint import load_checkpoint
    from training.runtime import (
        FOLDER,
        detector_file,
        detector_key,
        export_detector,
        export_network,
        int8_files,
        network_files,
        network_key,
        quantise_network,
    )

    folder = checkpoint_folder(args.model) / FOLDER
    model, config = load_checkpoint(args.model)
    key = network_key(config)

    def said(worst: float | None) -> str:
        return "already there" if worst is None else f"written; largest difference from PyTorch {worst:.2g}"

    found = {name: said(worst) for name, worst in zip(network_files(key), export_network(model, folder, key).values())}
    if args.int8:
        from training.checkpoint import crop_config
        from training.data import calibration_clips

        clips, described = calibration_clips(args.int8, crop_config(config), tuple(config["classes"]), args.int8_faces)
        shares = quantise_network(folder, key, clips, described).values()
        found |= {
            n: "already there" if a is None else f"written; {a:.1%} as fp32" for n, a in zip(int8_files(key), shares)
        }
    found |= {n: "kept (these weights and code)" for n in int8_files(key) if n not in found and (folder / n).is_file()}
    key = detector_key(DETECTOR_WEIGHTS, Path(detector.__file__))
    found[detector_file(key)] = said(export_detector(detector.BlazeFace("cpu").net, folder, key, detector.gray_input))
    for name, what in found.items():
        log.info("%s: %s", folder / name, what)
    # a checkpoint's folder holds its current exports only: those of older weights or code are never loaded again
    for stale in sorted({f.name for f in folder.glob("*.onnx")} - set(found)):
        (folder / stale).unlink()
        log.info("%s: removed (an export of other weights or code)", folder / stale)


def main(argv=None) -> None:
    from training.model import VARIANTS

    ap = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write a synthetic expression data set in the CK+ layout")
    p.add_argument("--out", required=True)
    p.add_argument("--subjects", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--photoreal",
        metavar="LONDON_DIR",
        default=None,
        help="instead of drawn faces: photo-real sequences of the London set's real people (CC BY 4.0)",
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument(
        "--all-identities", action="store_true", help="with --photoreal: also the identities held out for evaluation"
    )
    who.add_argument(
        "--only-held-out",
        action="store_true",
        help="with --photoreal: only the identities held out for evaluation (for packs that train other London folds)",
    )
    p.add_argument(
        "--smiles",
        type=int,
        default=1,
        metavar="N",
        help="with --photoreal: N happy sequences of each person's real smile, each under its own camera "
        "(extra ones are numbered last, so the --smiles 1 tree is a subset; the served set uses 1, "
        "docs/real-faces.md says what 3 did)",
    )
    p.add_argument(
        "--faint-smiles",
        type=int,
        default=0,
        metavar="F",
        help="with --photoreal: F more happy sequences per person whose morph stops at a faint smile "
        "(mouth corners moved 0.04-0.10 inter-ocular distances; numbered after the smiles)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="with --photoreal: render people in this many processes (same bytes)"
    )
    p.add_argument(
        "--studio",
        action="store_true",
        help="every sequence or video in a studio of its own (training/synthesis/studio.py): with --photoreal "
        "the London wall replaced by a random backdrop, a random key light with the face's shading, "
        "another camera's colour and tone; drawn faces get the backdrop and the camera; so the "
        "backdrop, light and camera carry no label",
    )
    p.add_argument(
        "--backgrounds",
        default=None,
        metavar="DIR",
        help="with --studio: photographs to use among the backdrops (default: $RAMFER_BACKGROUNDS_DIR; "
        "without either, flat colours, gradients, noise and scikit-image's textures only)",
    )
    p.add_argument(
        "--talking",
        action="store_true",
        help="instead of CK+ sequences, class folders of talking videos (calm talking is neutral; talking "
        "while holding each expression), H.264, read back with --data like any videos; drawn or --photoreal",
    )
    p.add_argument(
        "--people",
        type=int,
        default=None,
        metavar="N",
        help="with --photoreal: only the first N of the chosen identities (in id order; each person's "
        "videos are the same bytes whatever N is)",
    )
    p.add_argument(
        "--morphs",
        type=int,
        default=None,
        metavar="N",
        help="with --photoreal: instead of the chosen people, N new faces each made of two of them "
        "(morphs, subjects L001m017; a --london-fold that holds out either person drops them)",
    )
    p.add_argument(
        "--morph-balance",
        action="store_true",
        help="with --morphs: each morph's main person is drawn from the set's self-reported ethnicity groups "
        "in turn (london_info.csv), so small groups get as many new faces as large ones",
    )
    p.add_argument("--calm", type=int, default=2, metavar="N", help="with --talking: calm talking videos per person")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=cmd_synth)

    p = sub.add_parser("cv", help="person-independent k-fold cross-validation")
    add_recipe_args(p)
    p.add_argument("--out", required=True, help="run folder: results.json, table.md, confusion.png, attention.png")
    p.add_argument("--variant", default="econvlstm_ram", choices=[*VARIANTS, "all"])
    p.add_argument("--folds", type=int, default=10)
    p.add_argument(
        "--first-folds",
        type=int,
        default=None,
        metavar="K",
        help="run only the first K folds of the split (a cheaper comparison; the table says how many ran)",
    )
    p.set_defaults(run=cmd_cv)

    p = sub.add_parser("train", help="train on all of --data and write a servable checkpoint")
    add_recipe_args(p)
    p.add_argument("--out", required=True, help="checkpoint folder")
    p.add_argument(
        "--resumable",
        action="store_true",
        help=f"keep the run's state in OUT/{TRAINING_STATE} after every epoch and, when it is there, go on "
        "from it: the same command, run again after a stop, ends as one uninterrupted run would",
    )
    p.add_argument("--variant", default="econvlstm_ram", choices=VARIANTS)
    p.add_argument("--cv-results", default=None, help="a cv run's results.json, quoted in the model card")
    p.add_argument("--data-description", default=None, help="a sentence on the data for the model card")
    p.add_argument("--licence", action="append", default=[], help="a licence notice for the model card (repeatable)")
    p.add_argument("--limits", default=None, help="what the model cannot do, for the model card")
    p.add_argument(
        "--london-fold",
        type=int,
        default=None,
        metavar="K",
        choices=range(5),
        help="leave out the photo-real sequences of London fold K's people (0 is the served split's held-out "
        "people; benchmarks/london_eval.py --fold K then judges the model on them)",
    )
    p.add_argument(
        "--london",
        default=None,
        metavar="LONDON_DIR",
        help="the London set, for --london-fold (default: $RAMFER_LONDON_DIR)",
    )
    p.set_defaults(run=cmd_train)

    p = sub.add_parser(
        "pack", help="preprocess --data once into one .npz that --data reads anywhere (e.g. on a GPU machine)"
    )
    p.add_argument("--data", required=True, action="append", help="as for train; repeat to combine")
    p.add_argument("--neutral", action="store_true", help="pack for the 8-class model (stills included)")
    add_input_size_arg(p)
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument("--cache", default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=cmd_pack)

    p = sub.add_parser(
        "card",
        help="add measured metrics (and what they teach about its limits) to a checkpoint's record (weights untouched)",
    )
    p.add_argument("checkpoint")
    p.add_argument("--metric", action="append", default=[], metavar="NAME=VALUE", help="repeatable")
    p.add_argument("--limits", default=None, help="replace the card's limits text")
    p.add_argument(
        "--neutral-bias",
        type=float,
        default=None,
        metavar="X",
        help="record the prior for neutral the service decides with for this checkpoint (RAMFER_NEUTRAL_BIAS overrides it)",
    )
    p.add_argument(
        "--chosen-on", default=None, metavar="TEXT", help="with --neutral-bias: how it was chosen (data, command)"
    )
    p.set_defaults(run=cmd_card)

    p = sub.add_parser(
        "export",
        help="export a checkpoint's network and the face detector to ONNX into CHECKPOINT/onnx/, "
        "where the service's CPU runtime looks first (it otherwise makes them once into the cache)",
    )
    p.add_argument(
        "--model",
        default=str(SERVED_CHECKPOINT),
        metavar="CHECKPOINT",
        help="a checkpoint folder, or the name of a bundled one (default, synthetic, synthetic-7class); default: the served one",
    )
    p.add_argument(
        "--int8",
        default=None,
        metavar="DATA",
        help="also the network with int8 convolutions, calibrated on DATA's faces (any layout `train --data` reads, "
        "e.g. FER2013Valid); RAMFER_INFERENCE_INT8 runs them",
    )
    p.add_argument("--int8-faces", type=int, default=300, metavar="N", help="with --int8: how many faces calibrate")
    p.set_defaults(run=cmd_export)

    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.run(args)


if __name__ == "__main__":
    main()
