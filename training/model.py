"""Enhanced ConvLSTM + Recurrent Attention Module (RAM), the whole network in one file.

Miyoshi, Nagata, Hashimoto: "Recurrent Attention Module による動画ベース表情認識の内部構造分析".
Section 3.1: 1 convolution, 3 max-poolings, 4 recurrent layers (ConvLSTM, eq. 1, or Enhanced
ConvLSTM, eq. 2), then RAM, whose attention map re-weights the features by ABN's residual
mechanism before a fully connected layer gives the final class scores.
Loss = CE(RAM scores) + CE(FC scores).

The four models of Table 1 are one class switched by `ModelConfig.variant`:
    convlstm, convlstm_ram, econvlstm, econvlstm_ram (the served model).

What the paper leaves open, decided once here (the model card repeats it):
* Input: 48x48 gray face crops, each frame standardised to zero mean and unit variance inside
  the network. 48 px is the resolution of the common CK+/FER crops (and of the CK+ copy this
  must run on); gray because most CK+ frames are gray; per-frame standardisation because CK+
  lighting varies across subjects and it costs nothing to do here rather than in every caller.
* Which pixels the standardisation reads (`ModelConfig.standardise`): "frame", the whole crop
  (the default of `training train` and `cv`; every checkpoint up to served-v5b), or "face" (the
  served checkpoint since served-v7), the mean and variance over an ellipse
  that holds the face of an eye-aligned crop (`face_window`: centre (0.5, 0.56) of the side,
  semi-axes 0.35 x 0.46, measured on the 102 London templates mapped into the crop: cheeks at
  0.17-0.84, brows at 0.34, chin at 1.0), with everything outside it set to 0 after
  standardising. With "frame" the wall behind a face sets the face's contrast and brightness, and
  the corners of the crop show the wall to the network; with "face" neither: a backdrop that
  changes leaves the network's input unchanged outside a sliver at the cheeks (tests/test_model.py
  checks it). Measured against training with random studios alone: docs/studio-shift.md.
* Layout `conv pool rnn pool rnn pool rnn rnn`: the convolution (3x3, BN, ReLU) at 48 px and
  the first pooling run per frame; recurrent layer 1 at 24x24, pool, layer 2 at 12x12, pool,
  layers 3 and 4 at 6x6. Expressions live in small details (the paper's point about brow
  furrows and lid changes): with the first recurrent layer at 24 px the synthetic CV gets 98 %
  against 89 % with it at 12 px (docs/training.md); the attention map is 6x6 (each cell 8x8
  input pixels, enough to separate brows, eyes, nose and mouth corners).
* Widths 16 (stem) and 32 (recurrent), all kernels 3x3, GroupNorm with 4 groups.
* Eq. 1 peepholes W_c. are Hadamard weights per channel *and* position (Shi et al.'s tensors).
* Initial states h_{-1} = h_{-2} = c_{-1} = 0; forget-gate bias starts at 1 (the usual LSTM
  practice, so early training does not forget everything).
* RAM's state z_t is ABN's K-channel intermediate map, updated as
  z_t = ReLU(BN(W_gz * g_t + W_zz * z_{t-1})) with W_gz 1x1 (ABN's reduction) and W_zz 3x3
  (the recurrence, letting evidence move a little between steps). From z_t, as in ABN:
  M_t = sigmoid(BN(W_m * z_t)) in (0, 1), and RAM scores = GAP(W_s * z_t).
* The clip is classified at its last time step: FC reads the attended features of step T
  (flattened, so position is kept), and RAM's loss uses its step-T scores. h_T has seen the
  whole clip; earlier steps are returned (scores, maps) for display only.
* Where the answer came from (`ExpressionNet.evidence`): RAM's map turned out nearly flat and, on
  real faces, not used by the answer (replacing it by its mean changes under 1 % of them), so
  "where the model looked" is also drawn from FC's own per-cell evidence, an exact decomposition
  of its linear score.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

VARIANTS = ("convlstm", "convlstm_ram", "econvlstm", "econvlstm_ram")
STANDARDISE = ("frame", "face")
FACE_ELLIPSE = (0.5, 0.56, 0.35, 0.46)  # centre x, y and semi-axes, fractions of an eye-aligned crop's side


def face_window(size: int, feather: float = 1.0) -> torch.Tensor:
    """(size, size) weights in [0, 1]: 1 inside FACE_ELLIPSE, falling to 0 over `feather` pixels at its edge."""
    cx, cy, ax, ay = (v * size for v in FACE_ELLIPSE)
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    r = torch.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)  # 1 on the ellipse
    return ((1 - r) * min(ax, ay) / feather + 0.5).clamp(0, 1)


@dataclass(frozen=True)
class ModelConfig:
    variant: str = "econvlstm_ram"
    num_classes: int = 7
    input_size: int = 48  # square face crops, pixels
    in_channels: int = 1  # gray
    clip_length: int = 8  # frames per clip (the paper's 8); the network itself accepts any T
    layout: str = "conv pool rnn pool rnn pool rnn rnn"
    stem_channels: int = 16
    hidden_channels: int = 32
    kernel_size: int = 3
    gn_groups: int = 4
    dropout: float = 0.3
    standardise: str = (
        "frame"  # "frame": mean and std over the whole crop; "face": over the face ellipse, outside zeroed
    )

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        ops = self.layout.split()
        if ops[0] != "conv" or ops.count("conv") != 1 or ops.count("pool") != 3 or ops.count("rnn") != 4:
            raise ValueError(f"layout must be 1 conv (first), 3 pool and 4 rnn, got {self.layout!r}")
        if self.input_size % 8:
            raise ValueError("input_size must be divisible by 8 (three 2x2 poolings)")
        if self.standardise not in STANDARDISE:
            raise ValueError(f"standardise must be one of {', '.join(STANDARDISE)}, got {self.standardise!r}")

    @property
    def enhanced(self) -> bool:
        return self.variant.startswith("econvlstm")

    @property
    def ram(self) -> bool:
        return self.variant.endswith("_ram")

    def to_dict(self) -> dict:
        return asdict(self)


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # (B, K) final scores (FC / perception branch)
    ram_logits: torch.Tensor | None  # (B, T, K) RAM's scores at every step; None without RAM
    attention: torch.Tensor | None  # (B, T, h, w) RAM's maps in (0, 1); None without RAM


def tanh(x):
    """tanh(x) = 2 sigmoid(2x) - 1, the same function (to 2e-7 in fp32), computed through the sigmoid:
    PyTorch's CPU tanh is ~5x slower than this (2.13, AVX-512: 2.3 ms against 0.4 ms for a
    (32, 32, 24, 24) tensor; benchmarks/model_ops.py). GPUs and ONNX graphs keep torch.tanh: theirs is fast."""
    if x.device.type != "cpu" or torch.onnx.is_in_onnx_export():
        return torch.tanh(x)
    return 2 * torch.sigmoid(2 * x) - 1


class MaxPool2d(nn.MaxPool2d):
    """nn.MaxPool2d with the same values, pooled in channels-last memory on a CPU, where PyTorch's
    kernel for contiguous (N, C, H, W) tensors is ~10x slower (2.13: 7.4 ms against 0.7 ms for a
    (32, 32, 24, 24) tensor; benchmarks/model_ops.py)."""

    def forward(self, x):
        if x.device.type != "cpu" or x.dim() != 4 or torch.onnx.is_in_onnx_export():
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


class ConvLSTM(nn.Module):
    """ConvLSTM layer, eq. 1 (Shi et al. 2015), run over a whole sequence.

    `project` (the x-convolutions) depends on one frame only: it runs on all frames in one batched
    call before the loop (one large convolution is much faster than T small ones), and a video can
    compute it once per frame for all the overlapping clips the frame belongs to. `recur` is the loop.
    """

    def __init__(self, in_ch: int, ch: int, size: int, k: int = 3):
        super().__init__()
        self.ch = ch
        self.conv_x = nn.Conv2d(in_ch, 4 * ch, k, padding=k // 2)  # W_xi, W_xf, W_xc, W_xo and b_i, b_f, b_c, b_o
        self.conv_h = nn.Conv2d(ch, 4 * ch, k, padding=k // 2, bias=False)  # W_hi, W_hf, W_hc, W_ho
        # Hadamard peepholes W_ci, W_cf, W_co: one weight per channel and position
        self.w_ci = nn.Parameter(torch.zeros(ch, size, size))
        self.w_cf = nn.Parameter(torch.zeros(ch, size, size))
        self.w_co = nn.Parameter(torch.zeros(ch, size, size))
        with torch.no_grad():
            self.conv_x.bias[ch : 2 * ch].fill_(1.0)  # forget gate starts open

    def step(self, x_proj, h, c):
        """One time step. x_proj = conv_x(x_t), (B, 4C, H, W); h, c = h_{t-1}, c_{t-1}, or None at the
        first step, where both are 0 and every term that reads them is 0 (skipped, not computed)."""
        xi, xf, xc, xo = x_proj.chunk(4, dim=1)
        if c is None:  # t = 0: i = sigma(x_i), c = i o tanh(x_c)
            c = torch.sigmoid(xi) * tanh(xc)
        else:
            hi, hf, hc, ho = self.conv_h(h).chunk(4, dim=1)
            i = torch.sigmoid(xi + hi + self.w_ci * c)
            f = torch.sigmoid(xf + hf + self.w_cf * c)
            c = f * c + i * tanh(xc + hc)
            xo = xo + ho
        o = torch.sigmoid(xo + self.w_co * c)
        h = o * tanh(c)
        return h, c

    def project(self, x):  # (N, C_in, H, W) -> (N, 4C, H, W): W_x. * x_t, one frame at a time
        return self.conv_x(x)

    def recur(self, x_proj):  # (B, T, 4C, H, W) -> (B, T, C, H, W)
        steps = x_proj.unbind(1)  # not x_proj[:, t]: unbind's backward is one stack, not T zero fills
        h = c = None  # h_{-1} = c_{-1} = 0
        out = []
        for step in steps:
            h, c = self.step(step, h, c)
            out.append(h)
        return torch.stack(out, dim=1)

    def forward(self, x):  # x: (B, T, C_in, H, W) -> (B, T, C, H, W)
        return self.recur(self.project(x.flatten(0, 1)).unflatten(0, x.shape[:2]))


class EnhancedConvLSTM(nn.Module):
    """Enhanced ConvLSTM layer, eq. 2 (Miyoshi et al., MIRU 2020), run over a whole sequence.

    Against eq. 1: the peepholes are convolutions of the cell state; the temporal gates s~_t, s_t
    read h_{t-2}; the output adds the temporal skip s_t o s~_t and the spatial skip W_xr * x_t,
    and the sum is group-normalised.
    """

    def __init__(self, in_ch: int, ch: int, size: int, k: int = 3, groups: int = 4):
        super().__init__()
        p = k // 2
        self.ch = ch
        self.conv_x = nn.Conv2d(in_ch, 6 * ch, k, padding=p)  # W_x{i,f,c,o,s~,s} and their biases
        self.conv_xr = nn.Conv2d(in_ch, ch, k, padding=p, bias=False)  # spatial skip W_xr (no bias in eq. 2)
        self.conv_h1 = nn.Conv2d(ch, 4 * ch, k, padding=p, bias=False)  # W_h{i,f,c,o} * h_{t-1}
        self.conv_h2 = nn.Conv2d(ch, 2 * ch, k, padding=p, bias=False)  # W_h{s~,s} * h_{t-2}
        self.conv_c = nn.Conv2d(ch, 2 * ch, k, padding=p, bias=False)  # W_ci, W_cf * c_{t-1}
        self.conv_co = nn.Conv2d(ch, ch, k, padding=p, bias=False)  # W_co * c_t
        self.norm = nn.GroupNorm(groups, ch)  # g(.)
        with torch.no_grad():
            self.conv_x.bias[ch : 2 * ch].fill_(1.0)  # forget gate starts open

    def step(self, x_proj, x_skip, h1, h2, c):
        """One time step. x_proj = conv_x(x_t), x_skip = W_xr * x_t; h1, h2, c = h_{t-1}, h_{t-2}, c_{t-1},
        each None while it is still the initial 0 (h1 and c at t = 0, h2 at t <= 1): the convolutions
        of a zero state are 0 (they have no bias), so they are skipped rather than computed. The same
        numbers; of the state's convolutions (9C output channels a step), 8C are skipped at t = 0 and
        2C at t = 1."""
        xi, xf, xc, xo, xs_, xs = x_proj.chunk(6, dim=1)
        if c is None:  # t = 0: c = i o tanh(x_c), with i = sigma(x_i)
            c = torch.sigmoid(xi) * tanh(xc)
        else:
            hi, hf, hc, ho = self.conv_h1(h1).chunk(4, dim=1)
            ci, cf = self.conv_c(c).chunk(2, dim=1)
            i = torch.sigmoid(xi + hi + ci)
            f = torch.sigmoid(xf + hf + cf)
            c = f * c + i * tanh(xc + hc)
            xo = xo + ho
        if h2 is not None:
            hs_, hs = self.conv_h2(h2).chunk(2, dim=1)
            xs_, xs = xs_ + hs_, xs + hs
        s_ = tanh(xs_)  # temporal modulation gate s~_t
        s = torch.sigmoid(xs)  # temporal skip gate s_t
        o = torch.sigmoid(xo + self.conv_co(c))
        h = self.norm(o * tanh(c) + s * s_ + x_skip)
        return h, c

    def project(self, x):  # (N, C_in, H, W) -> (N, 7C, H, W): W_x. * x_t and W_xr * x_t, per frame
        return torch.cat([self.conv_x(x), self.conv_xr(x)], dim=1)

    def recur(self, x_proj):  # (B, T, 7C, H, W) -> (B, T, C, H, W)
        steps = x_proj.unbind(1)
        h1 = h2 = c = None  # h_{-1} = h_{-2} = c_{-1} = 0
        out = []
        for step in steps:
            h, c = self.step(step[:, : 6 * self.ch], step[:, 6 * self.ch :], h1, h2, c)
            h1, h2 = h, h1
            out.append(h)
        return torch.stack(out, dim=1)

    def forward(self, x):  # x: (B, T, C_in, H, W) -> (B, T, C, H, W)
        return self.recur(self.project(x.flatten(0, 1)).unflatten(0, x.shape[:2]))


class RecurrentAttention(nn.Module):
    """RAM: ABN's attention branch whose intermediate K-channel map z_t is carried to step t+1.

    Per step:  z_t = ReLU(BN(W_gz * g_t + W_zz * z_{t-1}))
               M_t = sigmoid(BN(W_m * z_t))            attention map, (B, 1, H, W), in (0, 1)
               r_t = GAP(W_s * z_t)                    RAM's class scores, (B, K)
    """

    def __init__(self, ch: int, num_classes: int):
        super().__init__()
        K = num_classes
        self.conv_g = nn.Conv2d(ch, K, 1, bias=False)  # W_gz: ABN's 1x1 reduction to K channels
        self.conv_z = nn.Conv2d(K, K, 3, padding=1, bias=False)  # W_zz: the recurrence
        self.bn_z = nn.BatchNorm2d(K)
        self.conv_m = nn.Conv2d(K, 1, 1, bias=False)  # W_m
        self.bn_m = nn.BatchNorm2d(1)
        self.conv_s = nn.Conv2d(K, K, 1)  # W_s

    def forward(self, g):  # g: (B, T, C, H, W) -> scores (B, T, K), maps (B, T, H, W)
        B, T = g.shape[:2]
        g_proj = self.conv_g(g.flatten(0, 1)).unflatten(0, (B, T)).unbind(1)  # W_gz * g_t for all t at once
        z = None  # z_{-1} = 0, and W_zz * 0 = 0: the first step has no recurrent term
        scores, maps = [], []
        for g_t in g_proj:
            z = F.relu(self.bn_z(g_t if z is None else g_t + self.conv_z(z)))
            maps.append(torch.sigmoid(self.bn_m(self.conv_m(z)))[:, 0])
            scores.append(self.conv_s(z).mean(dim=(2, 3)))
        return torch.stack(scores, dim=1), torch.stack(maps, dim=1)


def attend(g, m):
    """ABN's residual mechanism g' = (1 + M) . g, the one-channel map broadcast over channels."""
    return (1.0 + m.unsqueeze(-3)) * g  # g: (..., C, H, W), m: (..., H, W)


class ExpressionNet(nn.Module):
    """The network of section 3.1. Input: (B, T, 1, S, S) gray crops, pixel values 0..255."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = cfg = config
        ops = cfg.layout.split()
        first_rnn = ops.index("rnn")
        # Per-frame part (conv and the poolings before the first recurrent layer): it does not
        # depend on time, so it runs on B*T frames at once (and a video can share it across clips).
        frame_layers: list[nn.Module] = [
            nn.Conv2d(cfg.in_channels, cfg.stem_channels, cfg.kernel_size, padding=cfg.kernel_size // 2, bias=False),
            nn.BatchNorm2d(cfg.stem_channels),
            nn.ReLU(inplace=True),
        ]
        frame_layers += [MaxPool2d(2) for op in ops[1:first_rnn] if op == "pool"]
        self.frame_encoder = nn.Sequential(*frame_layers)

        size = cfg.input_size // 2 ** ops[:first_rnn].count("pool")
        ch = cfg.stem_channels
        self.temporal = nn.ModuleList()  # recurrent layers and the poolings between them
        for op in ops[first_rnn:]:
            if op == "pool":
                self.temporal.append(MaxPool2d(2))
                size //= 2
            elif cfg.enhanced:
                self.temporal.append(EnhancedConvLSTM(ch, cfg.hidden_channels, size, cfg.kernel_size, cfg.gn_groups))
            else:
                self.temporal.append(ConvLSTM(ch, cfg.hidden_channels, size, cfg.kernel_size))
            ch = cfg.hidden_channels if op == "rnn" else ch
        self.feature_size = size  # side of the feature map RAM sees (and of the attention maps)
        self.ram = RecurrentAttention(ch, cfg.num_classes) if cfg.ram else None
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(ch * size * size, cfg.num_classes)
        # not a parameter and not saved: a checkpoint's weights are the same whatever its standardisation
        self.register_buffer(
            "window", face_window(cfg.input_size) if cfg.standardise == "face" else None, persistent=False
        )

    def class_axes(self) -> dict[str, tuple[int, ...]]:
        """The state_dict entries that hold one slice per class, and the axes those slices lie on:
        FC's rows and, with RAM, every tensor of its K-channel map z (ABN's design: one channel per
        class, which W_s turns into RAM's scores). `--init` maps these by class name
        (training/warmstart.py); test_model checks that no other tensor depends on the classes."""
        axes = {"fc.weight": (0,), "fc.bias": (0,)}
        if self.ram is not None:
            axes |= {
                "ram.conv_g.weight": (0,),  # W_gz (K, C, 1, 1)
                "ram.conv_z.weight": (0, 1),  # W_zz (K, K, 3, 3): class to class
                "ram.bn_z.weight": (0,),
                "ram.bn_z.bias": (0,),
                "ram.bn_z.running_mean": (0,),
                "ram.bn_z.running_var": (0,),
                "ram.conv_m.weight": (1,),  # W_m (1, K, 1, 1)
                "ram.conv_s.weight": (0, 1),
                "ram.conv_s.bias": (0,),  # W_s (K, K, 1, 1) and its bias
            }
        return axes

    def frame_features(self, frames):  # (N, 1, S, S) uint8 or float 0..255 -> (N, P, S', S')
        """Everything that depends on a single frame: standardisation, the convolution, the
        poolings before the first recurrent layer, and that layer's input convolutions. A video
        computes it once per frame, though each frame belongs to up to 4 overlapping clips."""
        x = frames.float()
        if self.window is None:  # "frame"
            mean = x.mean(dim=(-2, -1), keepdim=True)
            std = x.std(dim=(-2, -1), keepdim=True)
            x = (x - mean) / (std + 1.0)  # +1 (in 0..255 units) keeps a flat frame from blowing up
        else:  # "face": the statistics of the face ellipse, and nothing of what lies outside it
            w = self.window
            n = w.sum()
            mean = (x * w).sum(dim=(-2, -1), keepdim=True) / n
            std = (((x - mean) ** 2 * w).sum(dim=(-2, -1), keepdim=True) / n).sqrt()
            x = (x - mean) / (std + 1.0) * w
        return self.temporal[0].project(self.frame_encoder(x))

    def head_features(self, feats):  # feats: (B, T, P, S', S') -> (B, C, h, w), (B, T, K) or None, (B, T, h, w) or None
        """What FC reads: the last step's features, attended by RAM's last map where the model has RAM;
        with RAM's scores and maps of every step."""
        g = self.temporal[0].recur(feats)
        for layer in self.temporal[1:]:
            if isinstance(layer, nn.MaxPool2d):
                g = layer(g.flatten(0, 1)).unflatten(0, g.shape[:2])
            else:
                g = layer(g)  # (B, T, C, H, W)
        if self.ram is None:
            return g[:, -1], None, None
        ram_logits, maps = self.ram(g)  # (B, T, K), (B, T, H, W)
        return attend(g[:, -1], maps[:, -1]), ram_logits, maps

    def forward_features(self, feats) -> ModelOutput:  # feats: (B, T, P, S', S') from frame_features
        head, ram_logits, maps = self.head_features(feats)
        return ModelOutput(self.fc(self.dropout(head.flatten(1))), ram_logits, maps)

    def evidence(self, clips, k) -> torch.Tensor:  # clips (B, T, 1, S, S), k (B,) classes -> (B, h, w)
        """Where class k's score came from, cell by cell of the last step's feature map. FC is linear
        in the features it reads, so its score for class k is exactly a sum over cells,

            s_k = b_k + sum_{h,w} e_k[h, w],   e_k[h, w] = sum_c W_fc[k, c, h, w] * g'[c, h, w],

        and softmax ignores whatever is added to every class alike: a cell's evidence for k is e_k
        less the classes' mean there (the cells' evidence sums to s_k - mean_j s_j, up to the bias).
        Positive where the cell pushed k above the other classes. Unlike RAM's map, this is what the
        answer was made of: on FER+ faces, RAM's map replaced by its own mean changes under 1 % of
        answers (docs/real-faces.md, "Where the model looked")."""
        B, T = clips.shape[:2]
        head, _, _ = self.head_features(self.frame_features(clips.flatten(0, 1)).unflatten(0, (B, T)))
        return self.evidence_from(head, k)

    def evidence_from(self, head, k) -> torch.Tensor:  # head (B, C, h, w) from head_features, k (B,) -> (B, h, w)
        """`evidence` from features head_features already gave: class k's cells less the classes' mean there."""
        e = self.cell_scores(head)
        return e[torch.arange(len(head)), k] - e.mean(1)

    def cell_scores(self, head) -> torch.Tensor:  # head (B, C, h, w) from head_features -> (B, K, h, w)
        """FC's score for every class, cell by cell: s_k = b_k + sum_{h,w} cell_scores[k, h, w]."""
        C, h, w = head.shape[1:]
        return torch.einsum("kchw,bchw->bkhw", self.fc.weight.view(-1, C, h, w), head)

    def forward(self, clips) -> ModelOutput:  # clips: (B, T, 1, S, S)
        B, T = clips.shape[:2]
        return self.forward_features(self.frame_features(clips.flatten(0, 1)).unflatten(0, (B, T)))


def loss_fn(out: ModelOutput, target, weight=None, label_smoothing: float = 0.0):
    """Loss = CE(FC scores) + CE(RAM scores at the last step), weights 1:1 as in ABN; the same class
    weights and label smoothing on both. target: class indices (B,), or each class's share (B, K),
    e.g. of a face's annotators' votes (Barsoum et al. found the vote distribution a better target
    than its majority)."""
    loss = F.cross_entropy(out.logits, target, weight=weight, label_smoothing=label_smoothing)
    if out.ram_logits is not None:
        loss = loss + F.cross_entropy(out.ram_logits[:, -1], target, weight=weight, label_smoothing=label_smoothing)
    return loss


def build_model(config: ModelConfig) -> ExpressionNet:
    return ExpressionNet(config)


# One public constructor per Table 1 model.
def convlstm(**kwargs) -> ExpressionNet:
    return ExpressionNet(ModelConfig(variant="convlstm", **kwargs))


def convlstm_ram(**kwargs) -> ExpressionNet:
    return ExpressionNet(ModelConfig(variant="convlstm_ram", **kwargs))


def econvlstm(**kwargs) -> ExpressionNet:
    return ExpressionNet(ModelConfig(variant="econvlstm", **kwargs))


def econvlstm_ram(**kwargs) -> ExpressionNet:
    return ExpressionNet(ModelConfig(variant="econvlstm_ram", **kwargs))
