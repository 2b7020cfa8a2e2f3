"""Where the networks run: the device and whether bf16 autocast pays there. Shared by training and
the service (which must not import the training loop for two helpers)."""

from __future__ import annotations

import torch


def pick_device(requested: str | None = None) -> torch.device:
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def bf16_ok(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # Without native bf16, CPU autocast is emulated and slower than fp32.
    return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
