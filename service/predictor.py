"""The served checkpoint, loaded once per process: the network (on PyTorch or ONNX Runtime), the
face detector that goes with it, the crop, the classes and the calibration. Uploads
(service/pipeline.py) and live sessions (service/live_worker.py) run the network only through it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.clips import CLIP_LENGTH
from training.faces import FaceDetector

# The prior for neutral of checkpoints whose config.json records no decision rule: the one the service
# used for them, chosen on rendered held-out people (docs/real-faces.md, "A prior for neutral")
LEGACY_NEUTRAL_BIAS = 2.5


class Predictor:
    """The checkpoint, loaded once per process, and the face detector that goes with it."""

    def __init__(
        self,
        model_dir: str | Path,
        device: str | None = None,
        batch_size: int = 32,
        bf16: bool = False,
        flip_average: bool = False,
        runtime: str = "auto",
        int8: bool = False,
    ):
        import torch

        from training.checkpoint import checkpoint_folder, crop_config, load_checkpoint
        from training.device import bf16_ok, pick_device
        from training.runtime import BF16_CLIPS_FROM, FOLDER, OnnxNetwork, network_runtime

        self.torch = torch
        self.device = pick_device(device)
        self.model, self.config = load_checkpoint(model_dir, self.device)
        self.bf16 = bf16 and bf16_ok(self.device)
        # What runs the network (training/runtime.py): ONNX Runtime on the CPU where it can (the
        # checkpoint's onnx/ folder, or an export made once into the cache), else the module itself.
        # auto leaves batches of clips to PyTorch's recurrence where bf16 autocast runs natively: there
        # it is the faster on a batch (BF16_CLIPS_FROM); the per-frame stage, and a few clips at a
        # time, are faster on ONNX Runtime (docs/performance.md, "The CPU runtime").
        exports = (checkpoint_folder(model_dir) / FOLDER,)
        self.network = network_runtime(
            self.model,
            self.config,
            exports,
            runtime,
            self.device,
            torch_clips_from=BF16_CLIPS_FROM if runtime == "auto" and self.bf16 else None,
            int8=int8,
        )
        self.runtime: str = getattr(self.network, "runtime", "torch")  # what runs the network, in words
        # autocast reaches only what runs on PyTorch: the module, or an OnnxNetwork's batches of clips
        self.bf16 = self.bf16 and (
            not isinstance(self.network, OnnxNetwork) or self.network.torch_clips_from is not None
        )
        self.crop = crop_config(self.config)
        self.classes: list[str] = self.config["classes"]
        self.sha256: str = self.config["weights_sha256"]
        self.variant: str = self.config["model"]["variant"]
        # Calibration (training/calibration.py): the reported probabilities are the network's at this
        # temperature; the decision reads the network's own, on which its rule was chosen.
        self.temperature: float = float((self.config.get("calibration") or {}).get("temperature", 1.0))
        # The prior for neutral its decision rule was chosen with (RAMFER_NEUTRAL_BIAS overrides it)
        self.neutral_bias: float = float((self.config.get("decision") or {}).get("neutral_bias", LEGACY_NEUTRAL_BIAS))
        self.batch_size = batch_size
        # Each clip also seen in a mirror (training flips half its clips, so the mirror is a
        # face it knows); the two probabilities are averaged. Twice the network's work.
        self.flip_average = flip_average
        # BlazeFace on the same device as the model; frames are detected detect_batch at a time
        self.detector = FaceDetector(device=str(self.device), runtime=runtime, export_folders=exports)
        self.detect_batch = 16

    @classmethod
    def from_settings(cls, settings, **overrides) -> Predictor:
        """The checkpoint as the service runs it: the settings' folder, device, batch, precision and
        runtime (what a worker loads, and what the benchmarks judge with); `overrides` replace any of them."""
        chosen = {
            "model_dir": settings.model_dir,
            "device": settings.device,
            "batch_size": settings.batch_size,
            "bf16": settings.inference_bf16,
            "flip_average": settings.flip_average,
            "runtime": settings.inference_runtime,
            "int8": settings.inference_int8,
        }
        return cls(**(chosen | overrides))

    def warm_up(self) -> None:
        self.predict(np.zeros((1, CLIP_LENGTH, self.crop.size, self.crop.size), np.uint8))

    def features(self, crops: np.ndarray):
        """(N, S, S) uint8 frames -> the network's per-frame features (N, P, h, w), on the device;
        (N, 2, P, h, w) with flip_average: each frame's, then its mirror image's."""
        torch = self.torch
        x = torch.from_numpy(crops)[:, None].to(self.device)  # (N, 1, S, S)
        if self.flip_average:
            x = torch.stack([x, x.flip(-1)], 1).flatten(0, 1)  # (2N, 1, S, S)
        with torch.inference_mode(), torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            f = self.network.frame_features(x)
        return f.unflatten(0, (-1, 2)) if self.flip_average else f

    def score(self, feats) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, T, P, h, w) clip features ((B, T, 2, P, h, w) with flip_average) -> class probabilities (B, K),
        attention maps (B, T, h', w') or None. Mirrored clips only vote: the maps are the clip's as shown."""
        torch = self.torch
        B = feats.shape[0]
        if self.flip_average:
            feats = feats.transpose(1, 2).flatten(0, 1)  # (2B, T, P, h, w): clip, its mirror, next clip, ...
        with torch.inference_mode(), torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            out = self.network.forward_features(feats)
            probs = out.logits.float().softmax(-1)
            maps = out.attention
            if self.flip_average:
                probs = probs.unflatten(0, (B, 2)).mean(1)
                maps = None if maps is None else maps.unflatten(0, (B, 2))[:, 0]
        return probs.cpu().numpy(), None if maps is None else maps.float().cpu().numpy()

    def calibrated(self, probabilities: np.ndarray) -> np.ndarray:
        """The network's clip probabilities as reported: at the checkpoint's fitted temperature."""
        from training.calibration import apply_temperature

        return apply_temperature(probabilities, self.temperature)

    def evidence(self, clip: np.ndarray, k: int) -> np.ndarray:
        """(T, S, S) uint8 crops of one clip -> (h, w): where class k's score came from, cell by cell
        (ExpressionNet.evidence; PyTorch fp32, one clip: a few milliseconds)."""
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(clip))[None, :, None].to(self.device)  # (1, T, 1, S, S)
        with torch.inference_mode():
            return self.model.evidence(x, torch.tensor([k], device=self.device))[0].float().cpu().numpy()

    def predict(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, T, S, S) uint8 clips -> probabilities, maps (each clip's frames encoded on their own)."""
        B, T = clips.shape[:2]
        return self.score(self.features(clips.reshape(B * T, *clips.shape[2:])).unflatten(0, (B, T)))
