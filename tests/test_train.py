"""training.train: the recipe's loop, eager and through torch.compile."""

from __future__ import annotations

import numpy as np
import torch

from training.data import Video
from training.model import ExpressionNet, ModelConfig
from training.train import TrainConfig, fit


def test_compiled_training_takes_the_same_steps_as_eager():
    """`training train|cv --compile` must train the weights eager training would. Without dropout (whose
    mask comes from another generator when compiled) and in fp32, both runs take the same steps,
    including each epoch's last, smaller batch, which the compiled loop runs eagerly so that it does
    not compile a second shape. Compiling takes up to ~3 min here with an empty cache (real inductor, C++ on the CPU)."""
    rng = np.random.default_rng(0)
    videos = [Video(f"S{i}", f"S{i}/001", i % 3, rng.integers(0, 256, (12, 16, 16), dtype=np.uint8)) for i in range(5)]
    cfg = TrainConfig(epochs=2, batch_size=4, clips_per_video=2, augment=False, amp=False)  # 10 clips: 4 + 4 + 2
    config = ModelConfig(num_classes=3, input_size=16, stem_channels=8, hidden_channels=8, dropout=0.0)
    torch.manual_seed(0)
    eager = ExpressionNet(config)
    compiled = ExpressionNet(config)
    compiled.load_state_dict(eager.state_dict())
    initial = {k: v.clone() for k, v in eager.state_dict().items()}

    eager_report = fit(eager, videos, cfg, torch.device("cpu"), progress=False)
    torch._dynamo.reset()
    compiled_report = fit(compiled, videos, cfg, torch.device("cpu"), progress=False, compiled=True)

    assert compiled_report["compiled"] and not eager_report["compiled"]
    # dynamo compiled the network as one graph (no graph breaks), once: the batch of 2 did not recompile
    counters = torch._dynamo.utils.counters
    assert counters["frames"]["ok"] == counters["frames"]["total"] == 1 and counters["stats"]["unique_graphs"] == 1
    eager_loss = [h["loss"] for h in eager_report["history"]]
    compiled_loss = [h["loss"] for h in compiled_report["history"]]
    assert len(compiled_loss) == 2 and np.allclose(compiled_loss, eager_loss, rtol=1e-4), (compiled_loss, eager_loss)
    trained = compiled.state_dict()
    for name, a in eager.state_dict().items():
        assert torch.allclose(a.float(), trained[name].float(), atol=1e-4), name
    # the compiled wrapper trained the model's own parameters, not copies
    assert not torch.equal(trained["fc.weight"], initial["fc.weight"])
