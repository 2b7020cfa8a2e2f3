"""training.train: the recipe's loop, eager and through torch.compile."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest
import torch
import torch._inductor.config
import torch.nn.functional as F

from training.data import Video
from training.model import ExpressionNet, ModelConfig
from training.train import TrainConfig, fit


def test_compiled_training_takes_the_same_steps_as_eager():
    """`training train|cv --compile` must train the weights eager training would. Without dropout (whose
    mask comes from another generator when compiled) and in fp32, both runs take the same steps,
    including each epoch's last, smaller batch, which the compiled loop runs eagerly so that it does
    not compile a second shape. Real inductor, C++ on the CPU, with its SIMD turned off (cpp.simdlen=1):
    choosing vector tilings for ~1000 kernels was more than half of the compile (this test: 334 s with
    SIMD, 185 s without, one core, an empty cache: `TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) OMP_NUM_THREADS=1
    pytest tests/test_train.py -k compiled`), and the test is about what is compiled and what it trains,
    which the scalar loops show as well. The vectorised kernels `--compile` runs are not checked against eager here."""
    rng = np.random.default_rng(0)
    videos = [Video(f"S{i}", f"S{i}/001", i % 3, rng.integers(0, 256, (12, 16, 16), dtype=np.uint8)) for i in range(5)]
    cfg = TrainConfig(
        epochs=2, min_steps=0, batch_size=4, clips_per_video=2, augment=False, amp=False
    )  # 10 clips: 4 + 4 + 2
    config = ModelConfig(num_classes=3, input_size=16, stem_channels=8, hidden_channels=8, dropout=0.0)
    torch.manual_seed(0)
    eager = ExpressionNet(config)
    compiled = ExpressionNet(config)
    compiled.load_state_dict(eager.state_dict())
    initial = {k: v.clone() for k, v in eager.state_dict().items()}

    eager_report = fit(eager, videos, cfg, torch.device("cpu"), progress=False)
    torch._dynamo.reset()
    with torch._inductor.config.patch({"cpp.simdlen": 1}):
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


def fresh_net(classes, variant="econvlstm_ram", seed=0) -> ExpressionNet:
    torch.manual_seed(seed)
    return ExpressionNet(ModelConfig(variant=variant, num_classes=len(classes)))


def test_init_maps_the_served_8_classes_onto_7_by_name():
    """--init from training/models/default onto a data set's 7 classes, in another order than the checkpoint's,
    so a row copied by position instead of by name would be another class's."""
    from training.checkpoint import SERVED_CHECKPOINT, crop_config, read_config
    from training.data import CLASSES, CLASSES_WITH_NEUTRAL
    from training.warmstart import read_starting_point, start_from

    start = read_starting_point(
        SERVED_CHECKPOINT, crop_config(read_config(SERVED_CHECKPOINT))
    )  # its own crop: box or aligned
    assert start.classes == CLASSES_WITH_NEUTRAL
    classes = tuple(reversed(CLASSES))  # surprise, sadness, happy, ...
    model = fresh_net(classes)
    record = start_from(model, start, classes)
    ours, theirs = model.state_dict(), start.state
    happy, their_happy = classes.index("happy"), CLASSES_WITH_NEUTRAL.index("happy")
    assert happy != their_happy
    assert torch.equal(ours["fc.weight"][happy], theirs["fc.weight"][their_happy])
    assert torch.equal(ours["fc.bias"][happy], theirs["fc.bias"][their_happy])
    rows = [CLASSES_WITH_NEUTRAL.index(c) for c in classes]
    assert torch.equal(ours["ram.conv_s.weight"], theirs["ram.conv_s.weight"][rows][:, rows])  # class to class
    assert torch.equal(ours["ram.conv_m.weight"], theirs["ram.conv_m.weight"][:, rows])
    assert torch.equal(ours["temporal.0.conv_x.weight"], theirs["temporal.0.conv_x.weight"])  # not per class: as is
    assert record["loaded"] == len(ours) and record["fresh"] == [] and record["sha256"] == start.sha256
    assert record["classes_dropped"] == ["neutral"] and record["classes_fresh"] == []
    assert set(record["mapped_by_class"]) == set(model.class_axes())


def test_init_starts_the_classes_the_checkpoint_lacks_fresh():
    """A 7-class checkpoint onto 8 classes: neutral's slices keep the new network's own initialisation."""
    from training.checkpoint import SERVED_CHECKPOINT, describe_start
    from training.data import CLASSES_WITH_NEUTRAL
    from training.faces import CropConfig
    from training.warmstart import read_starting_point, start_from

    start = read_starting_point(SERVED_CHECKPOINT.parent / "synthetic-7class", CropConfig())
    model = fresh_net(CLASSES_WITH_NEUTRAL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    record = start_from(model, start, CLASSES_WITH_NEUTRAL)
    after = model.state_dict()
    assert torch.equal(after["fc.weight"][7], before["fc.weight"][7])  # neutral: fresh
    assert torch.equal(after["fc.weight"][:7], start.state["fc.weight"])
    assert torch.equal(after["ram.conv_z.weight"][7], before["ram.conv_z.weight"][7])
    assert torch.equal(after["ram.conv_z.weight"][:7, :7], start.state["ram.conv_z.weight"])
    assert record["classes_fresh"] == ["neutral"] and record["classes_dropped"] == []
    assert "fresh: neutral" in describe_start(record)


def test_init_loads_what_fits_into_another_variant_and_names_the_rest():
    from training.checkpoint import SERVED_CHECKPOINT, describe_start
    from training.data import CLASSES
    from training.faces import CropConfig
    from training.warmstart import read_starting_point, start_from

    start = read_starting_point(SERVED_CHECKPOINT.parent / "synthetic-7class", CropConfig())  # box crops, 7 classes
    model = fresh_net(CLASSES, variant="convlstm")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    record = start_from(model, start, CLASSES)
    after = model.state_dict()
    fresh = [k for k in after if k.startswith("temporal.")]  # ConvLSTM's tensors: other names or shapes than eq. 2's
    assert fresh and record["fresh"] == fresh and record["loaded"] == len(after) - len(fresh)
    assert record["mapped_by_class"] == ["fc.bias", "fc.weight"]
    assert all(torch.equal(after[k], before[k]) for k in fresh)
    assert torch.equal(after["frame_encoder.0.weight"], start.state["frame_encoder.0.weight"])
    assert f"{len(fresh)} fresh (temporal.0.w_ci" in describe_start(record)


def test_init_refuses_a_checkpoint_of_other_crops():
    from training.checkpoint import SERVED_CHECKPOINT, CheckpointError
    from training.faces import CropConfig
    from training.warmstart import read_starting_point

    box_crops = SERVED_CHECKPOINT.parent / "synthetic-7class"  # trained before aligned crops existed
    with pytest.raises(CheckpointError, match=r"48 px box crops .* 64 px box crops.*--input-size 48"):
        read_starting_point(box_crops, CropConfig(size=64))
    with pytest.raises(CheckpointError, match=r"48 px aligned crops.*without --align"):
        read_starting_point(box_crops, CropConfig(align=True))
    # a run that asks for no crops makes the checkpoint's
    assert read_starting_point(box_crops, None).crop == CropConfig()


def test_label_smoothing_spreads_the_target_on_both_scores():
    """With smoothing eps the target is (1 - eps) on the label plus eps / K on every class, on the FC's and
    the RAM's cross-entropy alike: a confident right answer then costs more than without, and exactly this."""
    from training.model import ModelOutput, loss_fn

    logits = torch.tensor([[4.0, 0.0, -1.0], [0.5, 3.0, 0.0]])
    ram = torch.stack(
        [torch.zeros(2, 3), torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 5.0]])], 1
    )  # (B, T, K); the last step counts
    y = torch.tensor([0, 1])
    out = ModelOutput(logits, ram, None)

    def smoothed_ce(scores, eps):
        logp = scores.log_softmax(-1)
        target = torch.full_like(logp, eps / 3) + (1 - eps) * F.one_hot(y, 3)
        return -(target * logp).sum(-1).mean()

    plain, smooth = loss_fn(out, y), loss_fn(out, y, label_smoothing=0.2)
    assert torch.allclose(plain, smoothed_ce(logits, 0.0) + smoothed_ce(ram[:, -1], 0.0))
    assert torch.allclose(smooth, smoothed_ce(logits, 0.2) + smoothed_ce(ram[:, -1], 0.2))
    assert smooth > plain + 0.1  # not a no-op
    no_ram = loss_fn(ModelOutput(logits, None, None), y, label_smoothing=0.2)
    assert torch.allclose(no_ram, smoothed_ce(logits, 0.2))


def test_balanced_sampler_draws_the_classes_evenly():
    """--balance sampler: the epoch has as many items as the plain draw, each class about a third of them
    although class 0 has 12 videos and class 2 one; the small classes' videos all come round, the one of
    class 2 several times, each time with a clip of its own."""
    from training.train import balanced_items, epoch_items

    rng = np.random.default_rng(0)
    labels = [0] * 12 + [1] * 3 + [2]
    videos = [
        Video(f"S{i}", f"S{i}/001", c, rng.integers(0, 256, (14, 8, 8), dtype=np.uint8)) for i, c in enumerate(labels)
    ]
    plain = epoch_items(videos, 2, np.random.default_rng(1))
    for seed in range(5):
        items = balanced_items(videos, 2, np.random.default_rng(seed))
        assert len(items) == len(plain) == 32
        counts = np.bincount([videos[v].label for v, _ in items], minlength=3)
        assert counts.max() - counts.min() <= 1, counts  # 11, 11, 10 in some order
        per_video = np.bincount([v for v, _ in items], minlength=len(videos))
        assert per_video[15] >= 10 and all(3 <= per_video[i] <= 4 for i in (12, 13, 14))
        assert all(len(idx) == 8 and idx.max() < 14 for _, idx in items)


def test_balance_and_smoothing_reach_the_loss_fit_uses():
    """fit: class weights only with --balance loss, smoothing passed on; an unknown balance refused."""
    import training.train as train

    rng = np.random.default_rng(0)
    videos = [
        Video(f"S{i}", f"S{i}/001", int(i > 3), rng.integers(0, 256, (8, 16, 16), dtype=np.uint8)) for i in range(6)
    ]
    config = ModelConfig(num_classes=2, input_size=16, stem_channels=8, hidden_channels=8)
    seen = []
    real = train.loss_fn

    def spy(out, y, weight=None, label_smoothing=0.0):
        seen.append((weight, label_smoothing))
        return real(out, y, weight, label_smoothing)

    train.loss_fn = spy
    try:
        for balance in ("loss", "sampler", "none"):
            seen.clear()
            cfg = TrainConfig(
                epochs=1,
                min_steps=0,
                batch_size=6,
                clips_per_video=1,
                augment=False,
                amp=False,
                balance=balance,
                label_smoothing=0.1,
            )
            fit(ExpressionNet(config), videos, cfg, torch.device("cpu"), progress=False)
            weight, eps = seen[0]
            assert eps == 0.1
            assert (weight is not None) == (balance == "loss"), balance
            if weight is not None:
                assert torch.allclose(weight, torch.tensor([6 / (2 * 4), 6 / (2 * 2)]))
    finally:
        train.loss_fn = real
    with pytest.raises(ValueError, match="balance"):
        fit(
            ExpressionNet(config), videos, TrainConfig(epochs=1, balance="weights"), torch.device("cpu"), progress=False
        )


def test_a_short_epoch_gets_more_epochs_up_to_min_steps_unless_epochs_are_given():
    """Five 12-frame videos, one clip each, batch 4: an epoch is 2 steps. With min_steps 7 the one epoch
    asked for becomes 4 (8 steps, the one-cycle schedule spread over all of them); 0 keeps it at one. The
    command line adds epochs only when --epochs is not given."""
    from training.__main__ import add_recipe_args, recipe

    rng = np.random.default_rng(0)
    videos = [Video(f"S{i}", f"S{i}/001", i % 3, rng.integers(0, 256, (12, 16, 16), dtype=np.uint8)) for i in range(5)]
    config = ModelConfig(num_classes=3, input_size=16, stem_channels=8, hidden_channels=8)
    for min_steps, epochs in ((7, 4), (0, 1)):
        cfg = TrainConfig(epochs=1, min_steps=min_steps, batch_size=4, clips_per_video=1, augment=False, amp=False)
        report = fit(ExpressionNet(config), videos, cfg, torch.device("cpu"), progress=False)
        assert report["epochs"] == len(report["history"]) == epochs

    p = argparse.ArgumentParser()
    add_recipe_args(p)
    parse = lambda *a: recipe(p.parse_args(["--data", "x", "--seed", "0", *a]))  # noqa: E731
    assert (parse().epochs, parse().min_steps) == (TrainConfig.epochs, TrainConfig.min_steps) == (30, 900)
    assert (parse("--epochs", "15").epochs, parse("--epochs", "15").min_steps) == (15, 0)
    assert parse("--min-steps", "0").min_steps == 0 and parse("--epochs", "5", "--min-steps", "50").min_steps == 50


def test_each_data_source_gets_its_share_of_an_epoch():
    from training.train import epoch_items, shared_items

    rng = np.random.default_rng(0)
    stills = [Video(f"f{i}", f"f{i}", i % 2, np.zeros((1, 8, 8), np.uint8), source=0) for i in range(300)]
    clips = [Video(f"S{i}", f"S{i}/001", 2, np.zeros((12, 8, 8), np.uint8), source=1) for i in range(10)]
    videos = stills + clips
    cfg = TrainConfig(clips_per_video=2, shares=(0.25, 0.75), epoch_clips=80)
    items = shared_items(videos, cfg, rng, epoch_items)
    sources = [videos[v].source for v, _ in items]
    assert len(items) == 80 and sources.count(0) == 20 and sources.count(1) == 60  # 10 videos' 20 clips, drawn 3 times
    assert len({v for v, _ in items if videos[v].source == 0}) == 20  # a large source: a random part of it, no repeats
    with pytest.raises(ValueError, match="shares"):
        shared_items(videos, TrainConfig(shares=(1.0,)), rng, epoch_items)


def test_vote_shares_are_the_target_where_a_video_has_them():
    """A face that 6 of 10 annotators call class 0 and 4 class 1 pulls the network towards 0.6 / 0.4, not to 1 / 0."""
    from training.train import targets

    rng = np.random.default_rng(0)
    share = np.array([0.6, 0.4, 0.0], np.float32)
    videos = [Video(f"f{i}", f"f{i}", 0, rng.integers(0, 256, (1, 16, 16), dtype=np.uint8), share) for i in range(4)]
    videos += [Video("S9", "S9/001", 2, rng.integers(0, 256, (10, 16, 16), dtype=np.uint8))]
    assert targets(videos, [(0, None), (4, None)], 3).tolist() == [pytest.approx([0.6, 0.4, 0.0]), [0.0, 0.0, 1.0]]
    cfg = TrainConfig(
        epochs=30, min_steps=0, batch_size=5, clips_per_video=1, augment=False, amp=False, balance="none", lr=1e-2
    )
    torch.manual_seed(0)
    model = ExpressionNet(ModelConfig(num_classes=3, input_size=16, stem_channels=8, hidden_channels=8, dropout=0.0))
    fit(model, videos, cfg, torch.device("cpu"), progress=False)
    model.eval()
    with torch.no_grad():
        p = model(torch.from_numpy(np.stack([videos[0].frames[[0] * 8]]))[:, :, None]).logits.softmax(-1)[0]
    assert p[0] == pytest.approx(0.6, abs=0.15) and p[1] == pytest.approx(0.4, abs=0.15)
    # targets="majority": the same faces pull the network to their most-voted class alone
    torch.manual_seed(0)
    model = ExpressionNet(ModelConfig(num_classes=3, input_size=16, stem_channels=8, hidden_channels=8, dropout=0.0))
    fit(model, videos, dataclasses.replace(cfg, targets="majority"), torch.device("cpu"), progress=False)
    model.eval()
    with torch.no_grad():
        p = model(torch.from_numpy(np.stack([videos[0].frames[[0] * 8]]))[:, :, None]).logits.softmax(-1)[0]
    assert p[0] > 0.9
    with pytest.raises(ValueError, match="targets"):
        fit(model, videos, dataclasses.replace(cfg, targets="mean"), torch.device("cpu"), progress=False)
