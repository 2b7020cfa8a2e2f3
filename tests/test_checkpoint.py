"""A checkpoint folder (training/checkpoint.py): saved and loaded back to the same network, and refused
when its weights are not the ones it records."""

import pytest
import torch

from training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from training.faces import CropConfig
from training.model import econvlstm_ram


def test_checkpoint_roundtrip_is_identical(tmp_path):
    torch.manual_seed(0)
    model = econvlstm_ram()
    model.train()
    model(torch.randint(0, 256, (4, 8, 1, 48, 48)))  # move BatchNorm running stats off their init
    model.eval()
    x = torch.randint(0, 256, (2, 8, 1, 48, 48), dtype=torch.uint8)
    with torch.no_grad():
        before = model(x)
    save_checkpoint(tmp_path, model, CropConfig(), ["a", "b", "c", "d", "e", "f", "g"], {"seed": 0})
    loaded, config = load_checkpoint(tmp_path)
    with torch.no_grad():
        after = loaded(x)
    assert torch.equal(before.logits, after.logits)
    assert torch.equal(before.attention, after.attention)
    assert config["model"]["variant"] == "econvlstm_ram"
    assert config["weights_sha256"] in (tmp_path / "MODEL_CARD.md").read_text()


def test_tampered_weights_are_refused(tmp_path):
    save_checkpoint(tmp_path, econvlstm_ram(), CropConfig(), list("abcdefg"), {})
    data = bytearray((tmp_path / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(tmp_path)
