"""A servable checkpoint: a folder the service loads without executing any code from it.

    CHECKPOINT_DIR/model.safetensors   weights (safetensors: plain tensors, no pickle)
    CHECKPOINT_DIR/config.json         what rebuilds the network and its preprocessing, plus the
                                       training record (data, command, seed, metrics) and the
                                       weights' sha256
    CHECKPOINT_DIR/MODEL_CARD.md       the same for people, with the design decisions

`load_checkpoint` refuses weights whose sha256 differs from the one recorded beside them.
Importing this module does not import torch: the API reads config.json without it.
"""

from __future__ import annotations

import json
from pathlib import Path

from training.bundled import SERVED_CHECKPOINT, checkpoint_folder, sha256_of  # noqa: F401  (the service's default, and a bare --init's)
from training.clips import CLIP_LENGTH, CLIP_STRIDE

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "MODEL_CARD.md"


class CheckpointError(Exception):
    """What is wrong with a checkpoint: `problem` in a line, about the folder `folder` (None when the
    problem is not the folder's, e.g. crops that do not fit a run)."""

    def __init__(self, problem: str, folder=None):
        self.problem = " ".join(str(problem).split())  # one line, whatever an underlying error printed
        self.folder = Path(folder) if folder is not None else None
        super().__init__(f"{self.folder}: {self.problem}" if self.folder is not None else self.problem)


def save_checkpoint(out_dir, model, crop, classes, record: dict) -> dict:
    """Write weights, config.json and MODEL_CARD.md; returns the config written."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS), metadata={"format": str(FORMAT_VERSION)})
    (out / WEIGHTS).chmod(0o644)  # safetensors writes 0600; a non-root server must read it
    config = {
        "format": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "crop": crop.to_dict(),
        "classes": list(classes),
        "clip": {"length": CLIP_LENGTH, "stride": CLIP_STRIDE},
        "weights_sha256": sha256_of(out / WEIGHTS),
        "parameters": sum(p.numel() for p in model.parameters()),
        **record,
    }
    write_record(out, config)
    return config


def write_record(ckpt_dir, config: dict) -> None:
    """config.json and the model card made from it: the one place both are written."""
    out = Path(ckpt_dir)
    (out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    (out / CARD).write_text(model_card(config))


def read_config(ckpt_dir) -> dict:
    """config.json alone: what the API shows under /model without loading torch weights."""
    folder = checkpoint_folder(ckpt_dir)
    if not folder.is_dir():
        raise CheckpointError("not a folder" if folder.exists() else "no such folder", folder)
    try:
        text = (folder / CONFIG).read_text()
    except FileNotFoundError:
        raise CheckpointError(f"{CONFIG} not found", folder) from None
    except OSError as e:
        raise CheckpointError(f"cannot read {CONFIG}: {e.strerror or e}", folder) from e
    try:
        config = json.loads(text)
    except ValueError as e:
        raise CheckpointError(f"{CONFIG} is not valid JSON: {e}", folder) from e
    if not isinstance(config, dict) or config.get("format") != FORMAT_VERSION:
        found = config.get("format") if isinstance(config, dict) else None
        raise CheckpointError(f"{CONFIG}: checkpoint format {found!r}, expected {FORMAT_VERSION}", folder)
    return config


def verify_checkpoint(ckpt_dir) -> dict:
    """config.json, and weights beside it whose sha256 is the one it records (and the model card's);
    returns the config. No torch: `serve` checks the model with it before it starts anything."""
    ckpt = checkpoint_folder(ckpt_dir)
    config = read_config(ckpt)
    weights = ckpt / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{WEIGHTS} not found", ckpt)
    try:
        digest = sha256_of(weights)
    except OSError as e:
        raise CheckpointError(f"cannot read {WEIGHTS}: {e.strerror or e}", ckpt) from e
    if digest != config.get("weights_sha256"):
        raise CheckpointError(
            f"{WEIGHTS}: sha256 {digest} differs from the recorded {config.get('weights_sha256')}", ckpt
        )
    card = ckpt / CARD
    if card.is_file() and digest not in card.read_text():
        raise CheckpointError(f"{CARD} does not name the weights' sha256 {digest}", ckpt)
    return config


def load_checkpoint(ckpt_dir, device="cpu"):
    """(the network in eval mode, its config). Raises CheckpointError on any mismatch."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from training.model import ExpressionNet, ModelConfig

    ckpt = checkpoint_folder(ckpt_dir)
    config = verify_checkpoint(ckpt)
    try:
        model = ExpressionNet(ModelConfig(**config["model"]))
        model.load_state_dict(load_file(str(ckpt / WEIGHTS)))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{CONFIG} does not describe a network: {type(e).__name__}: {e}", ckpt) from e
    except (RuntimeError, SafetensorError) as e:  # load_state_dict's mismatch; a file safetensors cannot parse
        raise CheckpointError(f"{WEIGHTS} does not fit the recorded model config: {e}", ckpt) from e
    return model.to(device).eval(), config


def crop_config(config: dict):
    from training.faces import CropConfig

    return CropConfig.from_dict(config["crop"])  # no align fields (checkpoints made before aligned crops): box crops


def describe_start(record: dict) -> str:
    """One line for the log, the table and the model card about a run that started from a checkpoint
    (the record training.warmstart.start_from returns): what was loaded and what started fresh."""
    name = f" ({record['name']})" if record.get("name") else ""
    fresh = ", ".join(record["fresh"]) or "none"
    classes = f"classes from it: {', '.join(record['classes_loaded']) or 'none'}"
    if record["classes_fresh"]:
        classes += f"; fresh: {', '.join(record['classes_fresh'])}"
    if record["classes_dropped"]:
        classes += f"; dropped: {', '.join(record['classes_dropped'])}"
    return (
        f"started from {record['checkpoint']}{name}, sha256 {record['sha256'][:12]}: {record['loaded']} tensors loaded "
        f"({len(record['mapped_by_class'])} mapped by class name), {len(record['fresh'])} fresh ({fresh}); {classes}"
    )


def model_card(config: dict) -> str:
    """The model card: what the model is, what it learned from, how to reproduce it, how good it is."""
    from training import model as model_module

    m = config["model"]
    metrics = config.get("metrics") or {}
    lines = [
        f"# Model card: {m['variant']} ({config.get('name', 'checkpoint')})",
        "",
        "Video facial expression recognition: Enhanced ConvLSTM + Recurrent Attention Module "
        "(Miyoshi, Nagata, Hashimoto), implemented in `training/model.py`.",
        "",
        "## Identity",
        f"* weights: `{WEIGHTS}`, sha256 `{config['weights_sha256']}`",
        f"* parameters: {config['parameters']:,}",
        f"* classes ({len(config['classes'])}): {', '.join(config['classes'])}",
        f"* input: {m['input_size']}x{m['input_size']} gray face crops, clips of {config['clip']['length']} frames, "
        f"stride {config['clip']['stride']}; cross-validation labels a video by the majority vote of its clips (the paper's "
        "protocol); the service decides from its clips with smoothing, a minimum run and a prior for neutral "
        "(docs/configuration.md: RAMFER_VOTE_SMOOTH_CLIPS, RAMFER_VOTE_MIN_CLIPS, RAMFER_NEUTRAL_BIAS; the checkpoint's own prior under Decision)",
        f"* crop: {json.dumps(config['crop'])}",
        f"* network: {json.dumps(m)}",
        "",
        "## Training data",
        config.get("data_description", "(not recorded)"),
        "",
        "## Reproduce",
        "```",
        config.get("command", "(not recorded)"),
        "```",
        f"* seed: {config.get('seed')}",
        f"* recipe: `{json.dumps(config.get('train', {}))}`",
        f"* trained on: {config.get('trained_on', '(not recorded)')}, {config.get('train_seconds', 0):.0f} s",
    ]
    if config.get("init"):  # --init: reproducing it needs that checkpoint too
        lines.append(f"* {describe_start(config['init'])} (`--init`; the paper trains from scratch)")
    lines += [
        "",
        "## Metrics",
    ]
    if metrics:
        lines += [f"* {k}: {v}" for k, v in metrics.items()]
    else:
        lines += ["(none recorded)"]
    decision = config.get("decision")
    if decision:
        lines += [
            "",
            "## Decision",
            f"* prior for neutral: the service weighs neutral's probability by exp({decision['neutral_bias']}) before each "
            "clip is labelled (RAMFER_NEUTRAL_BIAS overrides it; training/clips.py, shift_prior)",
            f"* chosen on: {decision.get('chosen_on', '(not recorded)')}",
        ]
    calibration = config.get("calibration")
    if calibration:
        lines += [
            "",
            "## Calibration",
            f"* temperature: {calibration['temperature']} (the service reports clip probabilities at it; "
            "labels and the decision read the network's own: training/calibration.py)",
            f"* fitted on: {calibration.get('fitted_on', '(not recorded)')}",
        ]
        lines += [
            f"* expected calibration error, {name}: {e['before']} -> {e['after']} ({e['clips']} clips)"
            for name, e in (calibration.get("ece") or {}).items()
        ]
    lines += [
        "",
        "## Licences",
        config.get("licences", "Synthetic training data generated by this project (MIT)."),
        "",
        "## Design decisions (from training/model.py)",
        "",
        (model_module.__doc__ or "").strip(),
        "",
        "## Limits",
        config.get(
            "limits",
            "Trained on drawn synthetic faces only: on real people's videos its answers are guesses "
            "until it is trained on real data (see docs/training.md, 'Your own data').",
        ),
        "",
    ]
    return "\n".join(lines)
