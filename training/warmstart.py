"""Starting a network from a checkpoint's weights: `python -m training cv|train --init [CHECKPOINT]`
(the served checkpoint, training/models/default, when the flag is given bare).

This is not the paper's protocol, which trains every network from scratch, so a run that starts
from a checkpoint says so: results.json and table.md of `cv`, config.json and the model card of
`train` carry the record `start_from` returns (checkpoint, sha256, what was loaded, what started fresh).

What is loaded into the new network:
* every tensor whose name and shape fit (weights and BatchNorm statistics); the others (another
  variant's layers, another --hidden width) keep their fresh initialisation and are named;
* the tensors with one slice per class (`ExpressionNet.class_axes`: FC's rows, RAM's class
  channels) slice by slice by class NAME: the served model's 8 classes onto a data set's 7 (its
  neutral slices are dropped), a 7-class checkpoint onto 8 (neutral's slices start fresh), any
  order onto any other. Between the classes both have every weight is the checkpoint's; what the
  dropped classes' RAM channels added to the attention map is gone.

The crop must be the run's (size, box or aligned, scale): weights learnt on 48 px box crops do not
describe 64 px or aligned faces, and at another input size FC (and ConvLSTM's peepholes) cannot fit
at all, so "starting from our weights" would silently become a mostly fresh network. Another crop
is therefore an error that names the options to change, as a pack of other crops is (data.load_pack).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from training.checkpoint import CheckpointError, crop_config, load_checkpoint
from training.faces import CropConfig
from training.model import ExpressionNet


@dataclass(frozen=True)
class StartingPoint:
    """A checkpoint read once (and its sha256 checked), to start every fold's network from."""

    path: str
    name: str | None
    sha256: str
    classes: tuple[str, ...]
    state: dict[str, torch.Tensor]
    crop: CropConfig  # what it was trained on, and so what the run makes


def read_starting_point(ckpt_dir, crop: CropConfig | None) -> StartingPoint:
    """The checkpoint's weights, refused unless they were trained on the crops this run makes (None: a
    run that asked for no crops, which then makes the checkpoint's)."""
    model, config = load_checkpoint(ckpt_dir)
    theirs = crop_config(config)
    if crop is not None and theirs != crop:
        raise CheckpointError(
            f"{ckpt_dir} was trained on {describe_crop(theirs)}, this run makes {describe_crop(crop)}: its weights "
            f"do not fit them. Make the run's crops match ({crop_options(theirs)}) or start without --init."
        )
    return StartingPoint(
        str(ckpt_dir),
        config.get("name"),
        config["weights_sha256"],
        tuple(config["classes"]),
        model.state_dict(),
        theirs,
    )


def describe_crop(crop: CropConfig) -> str:
    kind = "aligned" if crop.align else "box"
    return f"{crop.size} px {kind} crops (scale {crop.scale})"


def crop_options(crop: CropConfig) -> str:
    return f"--input-size {crop.size}" + (" --align" if crop.align else " without --align")


def start_from(model: ExpressionNet, start: StartingPoint, classes) -> dict:
    """Load what fits of `start` into `model` (in place, before training); returns the record of it."""
    ours = model.state_dict()
    class_axes = model.class_axes()
    shared = [c for c in classes if c in start.classes]
    our_rows = torch.tensor([list(classes).index(c) for c in shared], dtype=torch.long)
    their_rows = torch.tensor([start.classes.index(c) for c in shared], dtype=torch.long)
    merged, loaded, fresh = dict(ours), [], []
    for name, tensor in ours.items():
        theirs = start.state.get(name)
        if theirs is not None and name in class_axes:
            theirs = by_class(theirs, tensor, class_axes[name], their_rows, our_rows)
        if theirs is None or theirs.shape != tensor.shape:
            fresh.append(name)
            continue
        merged[name] = theirs
        loaded.append(name)
    model.load_state_dict(merged)
    return {
        "checkpoint": start.path,
        "name": start.name,
        "sha256": start.sha256,
        "loaded": len(loaded),
        "fresh": fresh,
        "mapped_by_class": sorted(set(class_axes) & set(loaded)),
        "classes_loaded": shared,
        "classes_fresh": [c for c in classes if c not in start.classes],
        "classes_dropped": [c for c in start.classes if c not in classes],
    }


def by_class(
    theirs: torch.Tensor, ours: torch.Tensor, axes: tuple[int, ...], their_rows, our_rows
) -> torch.Tensor | None:
    """`ours` with the slices of the classes both networks have taken from `theirs`, matched by
    name (their_rows[i] is our_rows[i]); None when the two differ on an axis that is not per class."""
    other = [a for a in range(ours.dim()) if a not in axes]
    if theirs.dim() != ours.dim() or any(theirs.shape[a] != ours.shape[a] for a in other):
        return None
    if list(axes) != list(range(axes[0], axes[0] + len(axes))):
        raise ValueError(f"class axes {axes} must be adjacent")  # so the grid below lands where the axes are
    picked = theirs
    for a in axes:
        picked = picked.index_select(a, their_rows)
    where = [slice(None)] * ours.dim()
    for a, grid in zip(axes, torch.meshgrid(*[our_rows] * len(axes), indexing="ij")):
        where[a] = grid
    out = ours.clone()
    out[tuple(where)] = picked.to(out.dtype)
    return out
