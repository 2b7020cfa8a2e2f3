"""The network against the paper's equations, computed by hand on tiny tensors."""

import math

import numpy as np
import pytest
import torch

from training.model import (
    VARIANTS,
    ConvLSTM,
    EnhancedConvLSTM,
    ExpressionNet,
    ModelConfig,
    RecurrentAttention,
    attend,
    econvlstm_ram,
    loss_fn,
)

sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731


def fill_(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.7)


def test_convlstm_step_is_equation_1_by_hand():
    # one channel, one pixel, 1x1 kernels: every W is a number and the step is plain arithmetic
    cell = ConvLSTM(1, 1, size=1, k=1)
    fill_(cell, 0)
    wx = cell.conv_x.weight.flatten().tolist()  # W_xi, W_xf, W_xc, W_xo
    bx = cell.conv_x.bias.tolist()
    wh = cell.conv_h.weight.flatten().tolist()
    wci, wcf, wco = cell.w_ci.item(), cell.w_cf.item(), cell.w_co.item()
    x, h, c = 0.8, -0.3, 0.5

    i = sig(wx[0] * x + wh[0] * h + wci * c + bx[0])
    f = sig(wx[1] * x + wh[1] * h + wcf * c + bx[1])
    c_new = f * c + i * math.tanh(wx[2] * x + wh[2] * h + bx[2])
    o = sig(wx[3] * x + wh[3] * h + wco * c_new + bx[3])  # peephole reads the NEW cell state
    h_new = o * math.tanh(c_new)

    t = lambda v: torch.tensor([[[[v]]]])  # noqa: E731
    got_h, got_c = cell.step(cell.conv_x(t(x)), t(h), t(c))
    assert got_c.item() == pytest.approx(c_new, abs=1e-6)
    assert got_h.item() == pytest.approx(h_new, abs=1e-6)


def test_convlstm_peepholes_are_hadamard_per_channel_and_position():
    cell = ConvLSTM(3, 4, size=5)
    assert cell.w_ci.shape == cell.w_cf.shape == cell.w_co.shape == (4, 5, 5)
    # element-wise: a cell state that is zero except at one position changes the gates only there
    fill_(cell, 1)
    x_proj = torch.zeros(1, 16, 5, 5)
    h = torch.zeros(1, 4, 5, 5)
    c = torch.zeros(1, 4, 5, 5)
    base, _ = cell.step(x_proj, h, c)
    c[0, :, 2, 3] = 1.0
    bumped, _ = cell.step(x_proj, h, c)
    changed = (bumped - base).abs().sum(1)[0] > 1e-7
    assert changed[2, 3] and changed.sum() == 1


def group_norm(v, gamma, beta, eps=1e-5):
    mean = v.mean()
    var = ((v - mean) ** 2).mean()
    return (v - mean) / np.sqrt(var + eps) * gamma + beta


def test_enhanced_convlstm_step_is_equation_2_by_hand():
    # two channels (GroupNorm over one group of 2 values needs more than one), one pixel, 1x1 kernels:
    # every convolution is a 2x2 (or 2x1) matrix and the step is numpy arithmetic.
    C = 2
    cell = EnhancedConvLSTM(1, C, size=1, k=1, groups=1)
    fill_(cell, 2)
    W = lambda conv: conv.weight.detach().numpy()[:, :, 0, 0]  # noqa: E731  (out, in)
    Wx, bx = W(cell.conv_x), cell.conv_x.bias.detach().numpy()
    Wxr, Wh1, Wh2, Wc, Wco = W(cell.conv_xr), W(cell.conv_h1), W(cell.conv_h2), W(cell.conv_c), W(cell.conv_co)
    gate = lambda M, k, v: M[k * C : (k + 1) * C] @ v  # noqa: E731  rows of gate k
    x = np.array([0.9])
    h1 = np.array([0.4, -0.7])  # h_{t-1}
    h2 = np.array([-0.2, 0.5])  # h_{t-2}
    c = np.array([0.3, -0.6])
    s = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731

    i = s(gate(Wx, 0, x) + gate(Wh1, 0, h1) + gate(Wc, 0, c) + bx[0:2])
    f = s(gate(Wx, 1, x) + gate(Wh1, 1, h1) + gate(Wc, 1, c) + bx[2:4])
    c_new = f * c + i * np.tanh(gate(Wx, 2, x) + gate(Wh1, 2, h1) + bx[4:6])
    s_mod = np.tanh(gate(Wx, 4, x) + gate(Wh2, 0, h2) + bx[8:10])  # s~_t reads h_{t-2}
    s_skip = s(gate(Wx, 5, x) + gate(Wh2, 1, h2) + bx[10:12])  # s_t reads h_{t-2}
    o = s(gate(Wx, 3, x) + gate(Wh1, 3, h1) + Wco @ c_new + bx[6:8])  # conv peephole on c_t
    pre = o * np.tanh(c_new) + s_skip * s_mod + Wxr @ x  # temporal and spatial skips
    h_new = group_norm(pre, cell.norm.weight.detach().numpy(), cell.norm.bias.detach().numpy())

    t = lambda v: torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1)  # noqa: E731
    xt = t(x)
    got_h, got_c = cell.step(cell.conv_x(xt), cell.conv_xr(xt), t(h1), t(h2), t(c))
    np.testing.assert_allclose(got_c.detach().numpy().ravel(), c_new, atol=1e-6)
    np.testing.assert_allclose(got_h.detach().numpy().ravel(), h_new, atol=1e-5)


def test_temporal_gates_read_h_t_minus_2():
    layer = EnhancedConvLSTM(2, 4, size=6)
    fill_(layer, 3)
    seen = []
    layer.conv_h2.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()))
    seen_h1 = []
    layer.conv_h1.register_forward_hook(lambda m, inp, out: seen_h1.append(inp[0].detach().clone()))
    x = torch.randn(2, 5, 2, 6, 6)
    with torch.no_grad():
        h = layer(x)  # (B, T, C, H, W)
    # h_{-2} = h_{-1} = 0: their convolutions are skipped (zero state), so W_h2 runs from t = 2, W_h1 from t = 1
    assert len(seen) == 3 and len(seen_h1) == 4
    for t in range(2, 5):
        torch.testing.assert_close(seen[t - 2], h[:, t - 2])  # h_{t-2} ...
        assert not torch.allclose(seen[t - 2], h[:, t - 1])  # ... not h_{t-1}
        torch.testing.assert_close(seen_h1[t - 1], h[:, t - 1])  # while the LSTM gates read h_{t-1}


@pytest.mark.parametrize("layer_class", [ConvLSTM, EnhancedConvLSTM])
def test_the_skipped_zero_state_gives_the_equations_numbers(layer_class):
    """The recurrence skips the convolutions of the initial zero state (h_{-1} = h_{-2} = c_{-1} = 0): the same
    numbers as eq. 1 / eq. 2 computed in full, with those states as zero tensors."""
    torch.manual_seed(0)
    layer = layer_class(3, 4, 6).eval()
    for p in layer.parameters():  # peepholes and every convolution non-zero, so a dropped term would show
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(2, 5, 3, 6, 6)
    with torch.no_grad():
        steps = layer.project(x.flatten(0, 1)).unflatten(0, x.shape[:2]).unbind(1)
        zero = torch.zeros(2, 4, 6, 6)
        out = []
        if layer_class is ConvLSTM:
            h = c = zero
            for step in steps:
                h, c = layer.step(step, h, c)
                out.append(h)
        else:
            h1 = h2 = c = zero
            for step in steps:
                h, c = layer.step(step[:, :24], step[:, 24:], h1, h2, c)
                h1, h2 = h, h1
                out.append(h)
        torch.testing.assert_close(layer(x), torch.stack(out, 1), rtol=0, atol=1e-6)


def test_ram_first_step_has_no_recurrent_term():
    """z_0 = ReLU(BN(W_gz * g_0 + W_zz * z_{-1})) with z_{-1} = 0 is ReLU(BN(W_gz * g_0)): W_zz runs from t = 1."""
    torch.manual_seed(0)
    ram = RecurrentAttention(4, 3).eval()
    calls = []
    ram.conv_z.register_forward_hook(lambda m, inp, out: calls.append(1))
    g = torch.randn(2, 3, 4, 6, 6)
    with torch.no_grad():
        scores, maps = ram(g)
        z0 = torch.relu(ram.bn_z(ram.conv_g(g[:, 0])))
        torch.testing.assert_close(maps[:, 0], torch.sigmoid(ram.bn_m(ram.conv_m(z0)))[:, 0])
        torch.testing.assert_close(scores[:, 0], ram.conv_s(z0).mean(dim=(2, 3)))
    assert len(calls) == 2  # t = 1, 2


def test_residual_mechanism():
    g = torch.randn(2, 3, 4, 4)
    m = torch.rand(2, 4, 4)
    out = attend(g, m)
    torch.testing.assert_close(out, g * (1 + m[:, None]))  # one map, broadcast over channels
    torch.testing.assert_close(attend(g, torch.zeros(2, 4, 4)), g)  # M = 0 leaves g
    torch.testing.assert_close(attend(g, torch.ones(2, 4, 4)), 2 * g)  # M = 1 doubles it


def test_fc_reads_attended_features_of_the_last_step():
    torch.manual_seed(0)
    model = econvlstm_ram().eval()
    captured = {}
    last_rnn = [m for m in model.temporal if not isinstance(m, torch.nn.MaxPool2d)][-1]
    last_rnn.register_forward_hook(lambda m, i, o: captured.__setitem__("g", o))
    model.fc.register_forward_hook(lambda m, i, o: captured.__setitem__("fc_in", i[0]))
    with torch.no_grad():
        out = model(torch.randint(0, 256, (2, 8, 1, 48, 48)))
    expected = ((1 + out.attention[:, -1, None]) * captured["g"][:, -1]).flatten(1)
    torch.testing.assert_close(captured["fc_in"], expected)


@pytest.mark.parametrize("variant", ["econvlstm_ram", "convlstm"])
def test_evidence_is_an_exact_decomposition_of_the_answer(variant):
    """Each cell's evidence, summed over the map, is the class's score above the classes' mean (less
    the same of FC's bias): what the picture shows adds up to what the model answered."""
    torch.manual_seed(1)
    model = ExpressionNet(ModelConfig(variant=variant)).eval()
    fill_(model.fc, 3)  # a trained-looking head: biases and weights of different sizes per class
    clips = torch.randint(0, 256, (3, 8, 1, 48, 48))
    with torch.no_grad():
        logits = model(clips).logits
        for k in range(7):
            ev = model.evidence(clips, torch.full((3,), k))
            assert ev.shape == (3, 6, 6)
            bias = model.fc.bias[k] - model.fc.bias.mean()
            torch.testing.assert_close(ev.sum((1, 2)) + bias, logits[:, k] - logits.mean(1), atol=1e-4, rtol=1e-4)
        # and it is local: a cell's evidence depends on that cell's features only, so zeroing FC's
        # weights at one cell zeroes the evidence there and nowhere else
        W = model.fc.weight.view(7, -1, 6, 6)
        W[:, :, 2, 3] = 0
        ev = model.evidence(clips, torch.zeros(3, dtype=torch.long))
    assert torch.all(ev[:, 2, 3] == 0) and torch.all(ev.flatten(1).abs().sum(1) > 0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_shapes_and_attention_range(variant):
    model = ExpressionNet(ModelConfig(variant=variant)).eval()
    with torch.no_grad():
        out = model(torch.randint(0, 256, (3, 8, 1, 48, 48), dtype=torch.uint8))
    assert out.logits.shape == (3, 7)
    if variant.endswith("_ram"):
        assert out.ram_logits.shape == (3, 8, 7)
        assert out.attention.shape == (3, 8, 6, 6)
        assert out.attention.min() > 0 and out.attention.max() < 1
    else:
        assert out.ram_logits is None and out.attention is None


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_reach_every_parameter(variant):
    torch.manual_seed(0)
    model = ExpressionNet(ModelConfig(variant=variant)).train()
    x = torch.randint(0, 256, (4, 8, 1, 48, 48)).float()
    loss_fn(model(x), torch.tensor([0, 1, 2, 3])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("variant", VARIANTS)
def test_class_axes_name_every_tensor_that_depends_on_the_classes(variant):
    """--init maps exactly these by class name: a per-class layer missing from class_axes would be
    loaded whole (or dropped) instead of matched by name."""
    seven = ExpressionNet(ModelConfig(variant=variant, num_classes=7)).state_dict()
    nine = ExpressionNet(ModelConfig(variant=variant, num_classes=9))
    differ = {
        name: tuple(a for a, (m, n) in enumerate(zip(t.shape, seven[name].shape)) if m != n)
        for name, t in nine.state_dict().items()
        if t.shape != seven[name].shape
    }
    assert differ == nine.class_axes()
    assert ("ram.conv_s.weight" in differ) == variant.endswith("_ram")


def test_features_shared_across_overlapping_clips_give_the_same_scores():
    """What the service does: per-frame features once, gathered into clips (stride 2)."""
    torch.manual_seed(0)
    model = econvlstm_ram().eval()
    frames = torch.randint(0, 256, (12, 1, 48, 48), dtype=torch.uint8)
    with torch.no_grad():
        feats = model.frame_features(frames)
        shared = model.forward_features(torch.stack([feats[s : s + 8] for s in (0, 2, 4)]))
        direct = model(torch.stack([frames[s : s + 8] for s in (0, 2, 4)]))
    torch.testing.assert_close(shared.logits, direct.logits)
    torch.testing.assert_close(shared.attention, direct.attention)


def test_ram_loss_is_the_sum_of_both_branches():
    torch.manual_seed(0)
    model = econvlstm_ram().eval()
    y = torch.tensor([1, 5])
    out = model(torch.randint(0, 256, (2, 8, 1, 48, 48)))
    expected = torch.nn.functional.cross_entropy(out.logits, y) + torch.nn.functional.cross_entropy(
        out.ram_logits[:, -1], y
    )
    torch.testing.assert_close(loss_fn(out, y), expected)


def test_frame_standardisation_ignores_brightness_and_contrast():
    model = econvlstm_ram().eval()
    x = torch.randint(40, 200, (1, 8, 1, 48, 48)).float()
    with torch.no_grad():
        a = model(x).logits
        brighter = model(x + 30).logits
        flatter = model(0.8 * x).logits
    torch.testing.assert_close(a, brighter, atol=1e-4, rtol=1e-4)  # exact: the mean is removed
    # the std floor (+1 grey level) makes contrast invariance approximate, on purpose
    torch.testing.assert_close(a, flatter, atol=2e-2, rtol=2e-2)


def test_face_standardisation_sees_nothing_outside_the_face_ellipse():
    """With standardise="face" the backdrop outside the ellipse cannot reach the network, and the
    statistics are the face's: a wall that turns from white to black changes nothing."""
    torch.manual_seed(0)
    model = econvlstm_ram(num_classes=8, standardise="face").eval()
    x = torch.randint(40, 200, (2, 8, 1, 48, 48)).float()
    outside = model.window == 0
    white, black = x.clone(), x.clone()
    white[..., outside], black[..., outside] = 245.0, 20.0
    with torch.no_grad():
        a, b = model(white).logits, model(black).logits
        brighter = model(torch.where(outside, white, white + 30)).logits  # the face alone brighter
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, brighter, atol=1e-4, rtol=1e-4)
    frame = econvlstm_ram(num_classes=8).eval()
    frame.load_state_dict(model.state_dict())  # the same weights: the window is not among them
    with torch.no_grad():
        assert (
            frame(white).logits - frame(black).logits
        ).abs().max() > 1e-3  # the whole-crop standardisation sees the wall
    # the ellipse holds the face of an aligned crop: eyes (y 0.42, x 0.34-0.66), mouth (0.77), chin (~0.95) in; corners out
    w, s = model.window, 48
    assert all(
        w[int(y * s), int(x * s)] == 1 for x, y in ((0.34, 0.42), (0.66, 0.42), (0.5, 0.77), (0.5, 0.95), (0.2, 0.55))
    )
    assert all(w[int(y * s), int(x * s)] == 0 for x, y in ((0.05, 0.05), (0.95, 0.05), (0.05, 0.95), (0.1, 0.4)))
    assert model.config.to_dict()["standardise"] == "face"


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="standardise"):
        ModelConfig(standardise="crop")
    with pytest.raises(ValueError, match="unknown variant"):
        ModelConfig(variant="lstm")
    with pytest.raises(ValueError, match="layout"):
        ModelConfig(layout="conv pool rnn rnn rnn rnn")
