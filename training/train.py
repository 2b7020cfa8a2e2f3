"""Training and evaluation on clips, the paper's protocol: every video is cut into 8-frame clips
(stride 2), each clip carries its video's label, and a video's prediction is the vote of its clips.

The recipe (the defaults of TrainConfig, what `python -m training cv|train` run):
* Each epoch draws up to `clips_per_video` clips of every training video, so long sequences
  do not outweigh short ones and an epoch costs the same whatever the sequences' lengths.
* Class-balanced cross-entropy (weights N / (K * n_c)): CK+ has 18 contempt and 83 surprise.
  `--balance sampler` draws class-balanced epochs instead, `none` neither; `--label-smoothing`
  is 0. Both measured on a CK+-sized photo-real set in docs/training.md ("A recipe for small real sets").
* AdamW, one-cycle learning rate, a fixed number of epochs: no early stopping, because the
  protocol has no validation split and the test fold must not choose the model.
* Mild augmentation, the same for every frame of a clip (AUG): horizontal flip, rotation
  +-5 deg, scale +-5 %, shift +-3 %, gamma 0.8..1.25, pixel noise up to sigma 3. Twice that
  underfitted in 20-30 epochs (71-79 % against 89-98 %); none at all overfits (train accuracy
  1.0). Brightness and contrast are left alone: the network standardises each frame.
* Batch 16, 30 epochs of 2 clips per video: about 900 optimiser steps on a CK+-sized set;
  batch 32 for 12 epochs (190 steps) did not converge (docs/training.md). A set whose epochs are
  shorter (short sequences give one clip each; few videos) gets more epochs, up to `min_steps`.
* Mixed precision: bf16 autocast on CUDA and on CPUs with native bf16 (AVX512-BF16/AMX), fp32
  elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training.clips import clip_indices, majority_vote
from training.data import Video
from training.device import bf16_ok
from training.model import ExpressionNet, loss_fn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    # Epochs are added where an epoch is short, up to this many optimiser steps in all (0: exactly
    # `epochs`). The recipe was made with ~900 steps (2 clips of each of ~250 videos, 30 epochs); a
    # copy of CK+ that keeps 3 frames a sequence has one clip a video and got ~550 (docs/training.md).
    min_steps: int = 900
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 0.01
    clips_per_video: int = 2
    augment: bool = True
    amp: bool = True  # bf16 autocast where the hardware has it
    seed: int = 0
    # How the classes' sizes are evened out (CK+ has 18 contempt and 83 surprise): "loss" weighs the
    # cross-entropy by class (class_weights), "sampler" draws each epoch's videos class-balanced
    # (balanced_items) with an unweighted loss, "none" does neither.
    balance: str = "loss"
    label_smoothing: float = 0.0  # on both cross-entropies, the FC's and the RAM's
    # Each --data root's share of an epoch's clips, in the order given (empty: as drawn, each video
    # giving up to clips_per_video), and an epoch's clips in all (0: as many as the videos give).
    # A set of 28,000 stills beside 3,000 videos would otherwise be nine tenths of every epoch.
    shares: tuple[float, ...] = ()
    epoch_clips: int = 0
    # What a face with annotators' votes (FER+) is trained towards: "votes", each class's share of its
    # votes (Barsoum et al. found it better than the majority), or "majority", the most-voted class alone.
    targets: str = "votes"

    def to_dict(self) -> dict:
        """As results.json and the model card hold it (JSON: the shares a list), so a run's recipe compares
        equal to the one read back from an earlier run's file."""
        return asdict(self) | {"shares": list(self.shares)}


def clips_of(video: Video) -> np.ndarray:
    return clip_indices(len(video.frames))


def gather_clips(videos: list[Video], items: list[tuple[int, np.ndarray]]) -> torch.Tensor:
    """uint8 (B, T, 1, S, S) from (video index, clip frame indices) pairs."""
    return torch.from_numpy(np.stack([videos[v].frames[idx] for v, idx in items]))[:, :, None]


AUG = {"rotate": 5.0, "scale": 0.05, "shift": 0.03, "gamma": (0.8, 1.25), "noise": 3.0}


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One random transform per clip, applied to all its frames. x: (B, T, 1, S, S) float 0..255."""
    B, T, C, S, _ = x.shape
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(B, generator=gen)  # noqa: E731
    angle = u(-AUG["rotate"], AUG["rotate"]) * math.pi / 180
    scale = u(1 - AUG["scale"], 1 + AUG["scale"])
    flip = torch.where(torch.rand(B, generator=gen) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, u(-2 * AUG["shift"], 2 * AUG["shift"])], 1),
            torch.stack([sin * flip, cos, u(-2 * AUG["shift"], 2 * AUG["shift"])], 1),
        ],
        1,
    )  # (B, 2, 3); grid coordinates span [-1, 1], so a shift of 2*s is s of the side
    grid = F.affine_grid(theta, (B, C, S, S), align_corners=False)
    grid = grid.repeat_interleave(T, dim=0)
    x = F.grid_sample(x.flatten(0, 1), grid, mode="bilinear", padding_mode="border", align_corners=False)
    x = x.unflatten(0, (B, T))
    gamma = u(*AUG["gamma"]).view(B, 1, 1, 1, 1)
    x = 255.0 * (x.clamp(0, 255) / 255.0) ** gamma
    noise = u(0, AUG["noise"]).view(B, 1, 1, 1, 1) * torch.randn(x.shape, generator=gen)
    return (x + noise).clamp(0, 255)


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 1.0)
    return torch.tensor(w, dtype=torch.float32)


def epoch_class_weights(videos: list[Video], cfg: TrainConfig, num_classes: int) -> torch.Tensor:
    """class_weights of the classes as an epoch draws them: of all the videos, or, where the sources
    have shares, each source's classes weighed by its share (a source of 28,000 stills that is half of
    every epoch counts as half, not nine tenths)."""
    labels = np.array([v.label for v in videos])
    if not cfg.shares:
        return class_weights(labels, num_classes)
    sources = np.array([v.source for v in videos])
    freq = sum(
        share * np.bincount(labels[sources == s], minlength=num_classes) / max((sources == s).sum(), 1)
        for s, share in enumerate(cfg.shares)
    ) / sum(cfg.shares)
    return torch.tensor(np.where(freq > 0, 1 / (num_classes * np.maximum(freq, 1e-12)), 1.0), dtype=torch.float32)


def epoch_items(videos: list[Video], k: int, rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    items = []
    for v, video in enumerate(videos):
        clips = clips_of(video)
        for row in rng.choice(len(clips), size=min(k, len(clips)), replace=False):
            items.append((v, clips[row]))
    order = rng.permutation(len(items))
    return [items[i] for i in order]


BALANCE = ("loss", "sampler", "none")
TARGETS = ("votes", "majority")


def balanced_items(videos: list[Video], k: int, rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    """As many items as epoch_items draws, each class (of those present) getting an equal share: a small
    class's videos come round several times an epoch, a large class's are a random part of them. Within a
    class every video is drawn as evenly as the share allows (whole rounds, then the rest without
    replacement), each time with a random clip of it."""
    n_items = sum(min(k, len(clips_of(v))) for v in videos)
    labels = np.array([v.label for v in videos])
    present = np.unique(labels)
    share = np.full(len(present), n_items // len(present))
    share[rng.choice(len(present), size=n_items % len(present), replace=False)] += 1
    items = []
    for c, m in zip(present, share):
        members = np.flatnonzero(labels == c)
        rounds, rest = divmod(int(m), len(members))
        drawn = np.concatenate([np.tile(members, rounds), rng.choice(members, size=rest, replace=False)])
        for v in drawn:
            clips = clips_of(videos[v])
            items.append((int(v), clips[rng.integers(len(clips))]))
    order = rng.permutation(len(items))
    return [items[i] for i in order]


def epoch_size(videos: list[Video], cfg: TrainConfig) -> int:
    return cfg.epoch_clips or sum(min(cfg.clips_per_video, len(clips_of(v))) for v in videos)


def shared_items(videos: list[Video], cfg: TrainConfig, rng: np.random.Generator, draw) -> list[tuple[int, np.ndarray]]:
    """An epoch of epoch_size items, each --data source (Video.source) giving its share of them
    (cfg.shares; equal where none are given but epoch_clips is), drawn from its own videos by
    `draw`, in whole rounds of them where a source has fewer items than its share."""
    n_sources = max(v.source for v in videos) + 1
    shares = np.asarray(cfg.shares or [1.0] * n_sources, np.float64)
    if len(shares) != n_sources:
        raise ValueError(f"{len(shares)} shares for {n_sources} data sources")
    total = epoch_size(videos, cfg)
    wanted = np.floor(total * shares / shares.sum()).astype(int)
    wanted[: total - wanted.sum()] += 1  # the rounding's remainder, one each to the first sources
    items = []
    for source, want in enumerate(wanted):
        members = [i for i, v in enumerate(videos) if v.source == source]
        drawn = []
        while members and len(drawn) < want:
            drawn += [(members[v], clip) for v, clip in draw([videos[i] for i in members], cfg.clips_per_video, rng)]
        items += drawn[:want]
    order = rng.permutation(len(items))
    return [items[i] for i in order]


def targets(videos: list[Video], batch, num_classes: int) -> torch.Tensor:
    """(B, K) training targets: a video's vote shares where it has them, its one-hot label elsewhere."""
    eye = np.eye(num_classes, dtype=np.float32)
    return torch.from_numpy(
        np.stack([videos[v].target if videos[v].target is not None else eye[videos[v].label] for v, _ in batch])
    )


def epochs_for(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """cfg.epochs, or more where that many epochs of `steps_per_epoch` make fewer than cfg.min_steps steps."""
    return max(cfg.epochs, math.ceil(cfg.min_steps / max(steps_per_epoch, 1)))


def fit(
    model: ExpressionNet,
    videos: list[Video],
    cfg: TrainConfig,
    device: torch.device,
    progress: bool = True,
    compiled: bool = False,
    state_path: Path | None = None,
) -> dict:
    """Train `model` in place on all clips of `videos`; returns the loss history and timing.

    compiled: run full batches through torch.compile(model). The recurrent cells are many small ops
    whose launches dominate a step; fused, a bf16 CPU step is about 1.6x faster (docs/performance.md)
    after a few minutes of compiling once per process (inductor caches it on disk for the next).
    The same weights, recipe and random draws: only dropout's mask comes from another generator.

    state_path: after every epoch, everything the next epoch depends on (weights, optimiser, schedule,
    every random generator, the history) is written there; a run given a state file that exists goes on
    from its epoch. A run killed at any point and started again with the same command ends with the
    weights an uninterrupted run has (tests/test_train.py kills one), so a from-scratch recipe longer
    than a working session still is one command. The file is refused if it was written by another
    recipe, network or data set."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.to(device).train()
    if cfg.balance not in BALANCE:
        raise ValueError(f"balance must be one of {BALANCE}, not {cfg.balance!r}")
    weight = epoch_class_weights(videos, cfg, model.config.num_classes).to(device) if cfg.balance == "loss" else None
    draw = balanced_items if cfg.balance == "sampler" else epoch_items
    if cfg.shares or cfg.epoch_clips:
        draw_each = draw
        draw = lambda videos, k, rng: shared_items(videos, cfg, rng, draw_each)  # noqa: E731
    if cfg.targets not in TARGETS:
        raise ValueError(f"targets must be one of {TARGETS}, not {cfg.targets!r}")
    # vote shares as targets (FER+), one-hot for the rest; with "majority", one-hot for all
    soft = cfg.targets == "votes" and any(v.target is not None for v in videos)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(epoch_size(videos, cfg) / cfg.batch_size)
    epochs = epochs_for(cfg, steps_per_epoch)
    if epochs > cfg.epochs:
        log.info(
            "%d optimiser steps an epoch: %d epochs instead of %d, for at least %d steps (min_steps)",
            steps_per_epoch,
            epochs,
            cfg.epochs,
            cfg.min_steps,
        )
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=epochs * steps_per_epoch, pct_start=0.2)
    amp = cfg.amp and bf16_ok(device)
    history, start = [], time.perf_counter()
    bar = tqdm(range(epochs), desc="epochs", disable=not progress, leave=False)
    cuda = device.type == "cuda"
    # Compiled for the full batch only: the epoch's last, smaller batch runs eagerly on the same weights,
    # since a second shape would compile again (and dynamic shapes fail to compile this network in torch 2.13).
    full_batch_model = torch.compile(model, dynamic=False) if compiled else model

    def to_device(t: torch.Tensor) -> torch.Tensor:  # from pinned memory on CUDA: the copy does not wait for the GPU
        return t.pin_memory().to(device, non_blocking=True) if cuda else t.to(device)

    identity = run_identity(model, videos, cfg)
    first = 0
    if state_path is not None and Path(state_path).is_file():
        first, history, spent = load_state(state_path, identity, model, opt, sched, rng, gen)
        start -= spent
        log.info("going on from %s: %d of %d epochs done", state_path, first, epochs)
    for epoch in bar:
        if epoch < first:
            continue
        items = draw(videos, cfg.clips_per_video, rng)
        # Sums stay on the device until the epoch ends: reading them every step (.item()) would make
        # the CPU wait for the GPU at each step instead of queueing the next one while it works.
        total, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long), 0
        for b in range(0, len(items), cfg.batch_size):
            batch = items[b : b + cfg.batch_size]
            if len(batch) < 2:  # BatchNorm needs more than one sample
                continue
            x = gather_clips(videos, batch).float()
            if cfg.augment:
                x = augment(x, gen)
            y = to_device(torch.tensor([videos[v].label for v, _ in batch]))
            target = to_device(targets(videos, batch, model.config.num_classes)) if soft else y
            step_model = full_batch_model if len(batch) == cfg.batch_size else model
            out, loss = train_step(step_model, opt, to_device(x), target, weight, amp, cfg.label_smoothing)
            sched.step()
            total += loss.detach().float() * len(batch)
            correct += (out.logits.argmax(1) == y).sum()
            seen += len(batch)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": total.item() / max(seen, 1),
                "train_clip_accuracy": correct.item() / max(seen, 1),
            }
        )
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", acc=f"{history[-1]['train_clip_accuracy']:.2f}")
        # without the bar (--quiet, logs, tests) the epoch is a log line, so a long run shows it is moving
        log.log(
            logging.DEBUG if progress else logging.INFO,
            "epoch %d/%d: loss %.4f, train clip accuracy %.3f",
            epoch + 1,
            epochs,
            history[-1]["loss"],
            history[-1]["train_clip_accuracy"],
        )
        if state_path is not None:
            save_state(
                state_path, identity, epoch + 1, history, time.perf_counter() - start, model, opt, sched, rng, gen
            )
    return {
        "epochs": epochs,
        "history": history,
        "seconds": time.perf_counter() - start,
        "amp_bf16": amp,
        "device": str(device),
        "compiled": compiled,
    }


def run_identity(model: ExpressionNet, videos: list[Video], cfg: TrainConfig) -> str:
    """What a saved state belongs to: the recipe, the network and the data (each video's name, label
    and frame count), as a hash. A state of another run is refused rather than continued."""
    h = hashlib.sha256(json.dumps([cfg.to_dict(), model.config.__dict__], sort_keys=True, default=str).encode())
    for v in videos:
        h.update(f"{v.name}|{v.label}|{len(v.frames)}\n".encode())
    return h.hexdigest()


def save_state(
    path, identity: str, epochs_done: int, history: list, seconds: float, model, opt, sched, rng, gen
) -> None:
    """Written beside and renamed over, so a run killed while writing keeps the epoch before."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "identity": identity,
            "epochs_done": epochs_done,
            "history": history,
            "seconds": seconds,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "schedule": sched.state_dict(),
            "numpy": rng.bit_generator.state,
            "augment": gen.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
        tmp,
    )
    os.replace(tmp, path)


def load_state(path, identity: str, model, opt, sched, rng, gen) -> tuple[int, list, float]:
    state = torch.load(path, map_location="cpu", weights_only=False)  # our own file: numpy's generator state is a dict
    if state["identity"] != identity:
        raise ValueError(
            f"{path} is the state of another run (recipe, network or data differ): remove it to start afresh"
        )
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["schedule"])
    rng.bit_generator.state = state["numpy"]
    gen.set_state(state["augment"])
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    return state["epochs_done"], state["history"], state["seconds"]


def train_step(
    model: ExpressionNet, opt: torch.optim.Optimizer, x, y, weight=None, amp: bool = False, label_smoothing: float = 0.0
):
    """One optimiser step of the recipe on a batch of clips x (B, T, 1, S, S) already on the device;
    y: class indices (B,) or class shares (B, K)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        out = model(x)
        loss = loss_fn(out, y, weight, label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return out, loss


@dataclass
class VideoPrediction:
    label: int  # the vote
    votes: np.ndarray  # (K,)
    clip_probs: np.ndarray  # (n_clips, K)
    clip_labels: np.ndarray  # (n_clips,)
    attention: np.ndarray | None  # (n_clips, T, h, w) RAM maps, or None


@torch.inference_mode()
def predict_videos(
    model: ExpressionNet, videos: list[Video], device: torch.device, batch_size: int = 64, keep_attention: bool = False
) -> list[VideoPrediction]:
    """Every clip of every video through the model (fp32), then each video's vote."""
    model.to(device).eval()
    items = [(v, idx) for v, video in enumerate(videos) for idx in clips_of(video)]
    probs, maps = [], []
    for b in range(0, len(items), batch_size):
        out = model(gather_clips(videos, items[b : b + batch_size]).to(device))
        probs.append(out.logits.float().softmax(-1).cpu())
        if keep_attention and out.attention is not None:
            maps.append(out.attention.float().cpu())
    probs = torch.cat(probs).numpy()
    maps = torch.cat(maps).numpy() if maps else None
    preds, start = [], 0
    for video in videos:
        n = len(clips_of(video))
        p = probs[start : start + n]
        labels = p.argmax(1)
        winner, votes = majority_vote(labels, p, num_classes=p.shape[1])
        preds.append(VideoPrediction(winner, votes, p, labels, None if maps is None else maps[start : start + n]))
        start += n
    return preds
