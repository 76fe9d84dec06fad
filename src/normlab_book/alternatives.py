"""Experiments of chapter 6, "Alternatives": the other normalizations, measured.

Four groups of tools live here; the chapter calls them and keeps the teaching code visible.

**Which elements share statistics.** :func:`normalize_as` runs batch, layer, instance or group
norm through ``normlab`` (all of them :func:`normlab.norm_over_axes_forward` with different
axes); :func:`shared_statistics_mask` *measures* which entries of an (N, C, H, W) block share
their mean and variance with one entry, by perturbing that entry and seeing which outputs move;
:func:`spanned_axes` names the axes such a mask extends along; :func:`draw_axis_patterns`
draws the masks as voxel blocks.

**Many small CNNs / RNNs trained at once.** The batch-size sweep needs
kinds x batch sizes x seeds training runs, and a Python loop per tiny net would blow the
chapter's time budget. :class:`EnsembleCNN` holds ``K`` independent copies of
:func:`tiny_cnn` (possibly with different normalizations) as one network of grouped
convolutions: member ``k`` owns input channel ``k`` and a contiguous block of channels in
every layer, and every normalization acts per member (per-channel statistics for batch norm
and batch renorm, groups that never straddle two members for group and layer norm). Members
therefore share nothing, and the summed loss gives every member exactly its own gradient;
:meth:`EnsembleCNN.member` returns member ``k`` as an ordinary ``nn.Sequential``.
:class:`EnsembleRNN` does the same for :class:`TinyRNN`, a tanh RNN whose summed input
``W_x x_t + W_h h_{t-1} + b`` is normalized at every time step (no norm, batch norm with one
set of statistics shared by all time steps, batch norm with statistics per time step as in
Cooijmans et al. 2016, or layer norm). :func:`train_ensemble` trains either kind of ensemble
with Adam or with SGD (then with one learning rate per member), every member drawing its own
mini-batches from its own seeded generator. Members without a conv bias (the normalized kinds)
and with one (kind "none") share an ensemble: the missing biases are masked to 0.

**The batch-size sweep** (:func:`batch_size_sweep`) follows Wu and He's protocol: equal
epochs at every batch size, the learning rate scaled linearly with the batch, one base rate
per method chosen on a validation split (:func:`validation_split`).

**Batch renormalization's schedule**, squeezed into a short run: :func:`short_renorm_schedule`.

**Weight and spectral normalization.** :func:`weightnorm_descent` runs gradient descent on a
weight-normalized logistic regression with ``normlab.weightnorm`` and records ``||v||``;
:func:`power_iteration_errors` records how fast ``normlab.spectralnorm.power_iteration``
finds the top singular value; :func:`lipschitz_ratios` measures
``||f(x) - f(y)|| / ||x - y||`` for an MLP with and without spectrally normalized weights, and
:func:`jacobian_norms` the norm of its Jacobian (the worst local stretch).

**Facts for the comparison table**: :func:`batch_dependence`, :func:`train_eval_difference`
and :func:`batch_of_one`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from normlab.groupwise import (
    groupnorm_forward,
    instancenorm_forward,
    layernorm_forward,
    norm_over_axes_forward,
)
from normlab.renorm import renorm_schedule
from normlab.spectralnorm import power_iteration, weight_to_matrix
from normlab.torch_modules import BatchRenorm1d, BatchRenorm2d
from normlab.weightnorm import weightnorm_backward, weightnorm_forward

__all__ = [
    "NORM_KINDS",
    "normalize_as",
    "shared_statistics_mask",
    "spanned_axes",
    "draw_axis_patterns",
    "tiny_cnn",
    "EnsembleCNN",
    "TinyRNN",
    "EnsembleRNN",
    "short_renorm_schedule",
    "batch_indices",
    "train_ensemble",
    "eval_logits",
    "eval_accuracy",
    "train_mode_accuracy",
    "SweepResult",
    "validation_split",
    "batch_size_sweep",
    "per_step_renorm_factors",
    "weightnorm_descent",
    "power_iteration_errors",
    "lipschitz_ratios",
    "jacobian_norms",
    "batch_dependence",
    "train_eval_difference",
    "batch_of_one",
]

NORM_KINDS = ("batch", "layer", "instance", "group")


# =============================================================================================
# One operation, four sets of axes
# =============================================================================================


def normalize_as(kind: str, x, num_groups: int = 2, eps: float = 1e-5) -> np.ndarray:
    """Normalize ``x`` (N, C, H, W) as ``kind`` without scale and shift, through normlab.

    ``kind``: "batch" (``norm_over_axes_forward`` over (0, 2, 3), which is batch norm's
    training forward), "layer" (``layernorm_forward`` over (C, H, W)), "instance"
    (``instancenorm_forward``) or "group" (``groupnorm_forward`` with ``num_groups``).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) input, got shape {x.shape}")
    if kind == "batch":
        out, _ = norm_over_axes_forward(x, None, None, axes=(0, 2, 3), param_axes=(1,), eps=eps)
    elif kind == "layer":
        out, _ = layernorm_forward(x, None, None, eps, normalized_shape=x.shape[1:])
    elif kind == "instance":
        out, _ = instancenorm_forward(x, None, None, eps)
    elif kind == "group":
        out, _ = groupnorm_forward(x, None, None, num_groups, eps)
    else:
        raise ValueError(f"kind must be one of {NORM_KINDS}, got {kind!r}")
    return out


def shared_statistics_mask(kind: str, shape=(4, 6, 2, 2), index=(0, 0, 0, 0),
                           num_groups: int = 2, seed: int = 0) -> np.ndarray:
    """Boolean mask (``shape``) of the entries that share their statistics with ``x[index]``.

    Measured, not looked up: ``x[index]`` of a random ``x`` (seeded) is moved by 1 and the
    mask marks every output of :func:`normalize_as` that changes (by more than 1e-9). An
    output moves exactly when its mean and variance include ``x[index]``.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    before = normalize_as(kind, x, num_groups)
    x[tuple(index)] += 1.0
    after = normalize_as(kind, x, num_groups)
    return np.abs(after - before) > 1e-9


def spanned_axes(mask: np.ndarray, names: Sequence[str] = ("N", "C", "H", "W")) -> str:
    """The axes along which a statistics mask extends, e.g. "N, H, W".

    An axis is spanned fully when the mask covers all its indices, partly (written
    "C/G" for the channel axis, "part of X" otherwise) when it covers several but not all.
    """
    parts = []
    for axis, name in enumerate(names):
        count = int(np.any(mask, axis=tuple(a for a in range(mask.ndim) if a != axis)).sum())
        if count == mask.shape[axis] and count > 1:
            parts.append(name)
        elif count > 1:
            parts.append(f"{name}/G" if name == "C" else f"part of {name}")
    return ", ".join(parts) if parts else "(one entry)"


def draw_axis_patterns(masks: dict, titles: dict | None = None, figsize=(13, 3.6)):
    """Draw one voxel block per mask: N and C along the floor, H*W upwards.

    ``masks``: {name: boolean (N, C, H, W)}; highlighted voxels share one mean and variance.
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=figsize)
    for i, (name, mask) in enumerate(masks.items()):
        n, c, h, w = mask.shape
        ax = fig.add_subplot(1, len(masks), i + 1, projection="3d")
        cube = mask.reshape(n, c, h * w).transpose(1, 0, 2)  # x: C, y: N, z: H*W
        colors = np.where(cube[..., None], np.array([0.12, 0.47, 0.71, 0.9]),
                          np.array([0.85, 0.85, 0.85, 0.25]))
        ax.voxels(np.ones_like(cube), facecolors=colors, edgecolor=(0.3, 0.3, 0.3, 0.5),
                  linewidth=0.4)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_zticks([])
        ax.set_xlabel("C (channels)", labelpad=-12)
        ax.set_ylabel("N (batch)", labelpad=-12)
        ax.set_zlabel("H×W", labelpad=-12)
        ax.set_box_aspect((c, n, h * w), zoom=0.85)
        ax.view_init(elev=22, azim=-58)
        ax.set_title((titles or {}).get(name, name), fontsize=10)
    fig.subplots_adjust(left=0.0, right=1.0, bottom=0.02, top=0.9, wspace=0.0)
    return fig


# =============================================================================================
# Small CNNs, trained many at once
# =============================================================================================

_CNN_KINDS = ("none", "bn", "brn", "gn", "ln")


def _cnn_norm(kind: str, channels: int, num_groups: int) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "brn":
        return BatchRenorm2d(channels)
    if kind == "gn":
        return nn.GroupNorm(min(num_groups, channels), channels)
    if kind == "ln":
        return nn.GroupNorm(1, channels)
    raise ValueError(f"kind must be one of {_CNN_KINDS}, got {kind!r}")


def tiny_cnn(kind: str, width: int = 8, num_groups: int = 4, seed: int | None = None):
    """A small CNN for the (N, 1, 8, 8) digits, with normalization ``kind`` after each conv.

    ``kind``: "none", "bn" (``nn.BatchNorm2d``), "brn" (``BatchRenorm2d``), "gn"
    (``nn.GroupNorm(num_groups, C)``) or "ln" (``nn.GroupNorm(1, C)``: layer norm over
    (C, H, W) with one scale and shift per channel, Wu and He's layer norm for CNNs)::

        conv 3x3 (1 -> w)    8x8  -> norm -> ReLU -> max-pool -> 4x4
        conv 3x3 (w -> 2w)   4x4  -> norm -> ReLU -> max-pool -> 2x2
        conv 2x2 (2w -> 4w)  1x1  -> norm -> ReLU -> flatten -> linear (4w -> 10)

    The last normalization sees one value per sample and channel, like a norm after a
    fully connected layer. Convs before a norm have no bias. ``seed`` (if given) seeds
    ``torch`` before the weights are drawn; the draws do not depend on ``kind``.
    """
    if seed is not None:
        torch.manual_seed(seed)
    bias = kind == "none"
    w = width
    return nn.Sequential(
        nn.Conv2d(1, w, 3, padding=1, bias=bias), _cnn_norm(kind, w, num_groups), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1, bias=bias), _cnn_norm(kind, 2 * w, num_groups),
        nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 4 * w, 2, bias=bias), _cnn_norm(kind, 4 * w, num_groups), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * w, 10),
    )


def _norm_signature(m: nn.Module) -> tuple:
    """What must agree for two members' norm layers to be merged into one module."""
    if isinstance(m, nn.GroupNorm):
        return ("gn", m.num_groups, m.num_channels, m.eps, m.affine)
    if isinstance(m, BatchRenorm2d):
        return ("brn", m.num_features, m.eps, m.momentum)
    if isinstance(m, nn.BatchNorm2d):
        return ("bn", m.num_features, m.eps, m.momentum)
    if isinstance(m, nn.Identity):
        return ("none",)
    raise TypeError(f"unsupported normalization layer {type(m).__name__}")


def _merge_norms(mods: list) -> nn.Module:
    """One module acting on the concatenated channels of several identical norm layers."""
    sig, k = _norm_signature(mods[0]), len(mods)
    if sig[0] == "none":
        return nn.Identity()
    if sig[0] == "gn":
        merged = nn.GroupNorm(k * sig[1], k * sig[2], eps=sig[3], affine=sig[4])
    elif sig[0] == "brn":
        merged = BatchRenorm2d(k * sig[1], eps=sig[2], momentum=sig[3])
    else:
        merged = nn.BatchNorm2d(k * sig[1], eps=sig[2], momentum=sig[3])
    state = {}
    for key, value in mods[0].state_dict().items():
        if value.dim() == 0:  # num_batches_tracked
            state[key] = value.clone()
        else:
            state[key] = torch.cat([m.state_dict()[key] for m in mods])
    merged.load_state_dict(state)
    return merged


def _blocks(signatures: list) -> list[tuple[int, int]]:
    """(start, stop) of the runs of equal consecutive signatures."""
    out, start = [], 0
    for i in range(1, len(signatures) + 1):
        if i == len(signatures) or signatures[i] != signatures[start]:
            out.append((start, i))
            start = i
    return out


class _BlockNorm(nn.Module):
    """Apply one merged norm per block of members; channels of member k are contiguous."""

    def __init__(self, member_norms: list, channels: int):
        super().__init__()
        sigs = [_norm_signature(m) for m in member_norms]
        self.blocks = _blocks(sigs)
        self.sizes = [(stop - start) * channels for start, stop in self.blocks]
        self.norms = nn.ModuleList(
            _merge_norms(member_norms[start:stop]) for start, stop in self.blocks
        )

    def forward(self, h):
        if len(self.norms) == 1:
            return self.norms[0](h)
        parts = torch.split(h, self.sizes, dim=1)
        return torch.cat([m(p) for m, p in zip(self.norms, parts)], dim=1)

    def member_state(self, k: int, channels: int) -> dict:
        """The state dict of member ``k``'s own norm layer (slices of the merged one)."""
        for (start, stop), m in zip(self.blocks, self.norms):
            if start <= k < stop:
                lo = (k - start) * channels
                return {key: (v.clone() if v.dim() == 0 else v[lo:lo + channels].clone())
                        for key, v in m.state_dict().items()}
        raise IndexError(k)


class EnsembleCNN(nn.Module):
    """``K`` independent :func:`tiny_cnn` members run as one network of grouped convolutions.

    Built from a list of member networks (same ``width``; norms may differ): their weights
    are copied in, so member ``k`` starts exactly as ``members[k]``. Input ``(B, K, 8, 8)``,
    image ``x[:, k]`` for member ``k`` (a ``(B, 8, 8)`` or ``(B, 1, 8, 8)`` input is shared
    by all members); output logits ``(B, K, 10)``. The norm layers of consecutive members
    of the same kind are merged into one module (per-member statistics, see the module doc).
    """

    def __init__(self, members: Sequence[nn.Sequential]):
        super().__init__()
        self.n_members = K = len(members)
        if K < 1:
            raise ValueError("an ensemble needs at least one member")
        self.templates = [copy.deepcopy(m) for m in members]  # not registered: plain list
        convs = [[m[i] for m in members] for i in (0, 4, 8)]
        norms = [[m[i] for m in members] for i in (1, 5, 9)]
        heads = [m[12] for m in members]
        self.channels = [c[0].out_channels for c in convs]
        self.convs = nn.ModuleList()
        self.conv_biases = nn.ParameterList()
        for i, layer in enumerate(convs):
            c0 = layer[0]
            conv = nn.Conv2d(K * c0.in_channels, K * c0.out_channels, c0.kernel_size,
                             padding=c0.padding, groups=K, bias=False)
            has_bias = torch.tensor([c.bias is not None for c in layer])
            with torch.no_grad():
                conv.weight.copy_(torch.cat([c.weight for c in layer]))
                # members without a bias (kind "none" has one, the normalized kinds do not)
                # get a bias entry that is multiplied by 0: its gradient is exactly 0, so
                # neither SGD nor Adam ever moves it
                bias = torch.cat([c.bias if c.bias is not None else torch.zeros(c.out_channels)
                                  for c in layer])
            self.convs.append(conv)
            self.conv_biases.append(nn.Parameter(bias.clone()))
            self.register_buffer(f"bias_mask{i}",
                                 has_bias.repeat_interleave(c0.out_channels).to(bias.dtype))
        self.norms = nn.ModuleList(_BlockNorm(n, c) for n, c in zip(norms, self.channels))
        self.head_weight = nn.Parameter(torch.stack([h.weight.detach().clone() for h in heads]))
        self.head_bias = nn.Parameter(torch.stack([h.bias.detach().clone() for h in heads]))
        self.to(heads[0].weight.dtype)  # the members' dtype (float32 or float64)

    def forward(self, x):
        K = self.n_members
        if x.dim() == 4 and x.shape[1] == 1 and K > 1:
            x = x[:, 0]
        if x.dim() == 3:
            x = x.unsqueeze(1).expand(-1, K, -1, -1)
        h = x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = conv(h) + (self.conv_biases[i] * getattr(self, f"bias_mask{i}"))[:, None, None]
            h = F.relu(norm(h))
            if i < 2:
                h = F.max_pool2d(h, 2)
        h = h.reshape(len(h), K, -1)  # (B, K, 4w)
        return torch.einsum("bki,koi->bko", h, self.head_weight) + self.head_bias

    def member(self, k: int) -> nn.Sequential:
        """Member ``k`` as an ordinary ``tiny_cnn`` with the ensemble's current state."""
        net = copy.deepcopy(self.templates[k])
        with torch.no_grad():
            for conv_i, layer_i, c in zip((0, 4, 8), range(3), self.channels):
                net[conv_i].weight.copy_(self.convs[layer_i].weight[k * c:(k + 1) * c])
                if net[conv_i].bias is not None:
                    net[conv_i].bias.copy_(self.conv_biases[layer_i][k * c:(k + 1) * c])
            for norm_i, block, c in zip((1, 5, 9), self.norms, self.channels):
                state = block.member_state(k, c)
                if state:
                    net[norm_i].load_state_dict(state)
            net[12].weight.copy_(self.head_weight[k])
            net[12].bias.copy_(self.head_bias[k])
        net.train(self.training)
        return net


# =============================================================================================
# Small RNNs, trained many at once
# =============================================================================================

_RNN_KINDS = ("none", "bn", "bn_step", "ln", "gn")


class TinyRNN(nn.Module):
    """A tanh RNN classifier with a normalized summed input at every time step.

    ``h_t = tanh(norm_t(W_x x_t + W_h h_{t-1} + b))``, ``h_0 = 0``, logits ``= head(h_T)``.
    ``kind``: "none" (identity), "bn" (one ``nn.BatchNorm1d`` shared by every time step:
    one set of running statistics for all steps), "bn_step" (one ``BatchNorm1d`` per time
    step, ``steps`` of them; steps beyond the last use the last one, as Cooijmans et al.
    2016 do), "ln" (``nn.LayerNorm(hidden)``, per sample) or "gn"
    (``nn.GroupNorm(num_groups, hidden)``, per sample and group of units).
    Input (B, T, input_size).
    """

    def __init__(self, kind: str, input_size: int = 8, hidden: int = 32, steps: int = 8,
                 num_classes: int = 10, num_groups: int = 4, seed: int | None = None):
        super().__init__()
        if kind not in _RNN_KINDS:
            raise ValueError(f"kind must be one of {_RNN_KINDS}, got {kind!r}")
        if seed is not None:
            torch.manual_seed(seed)
        self.kind, self.hidden, self.steps = kind, hidden, steps
        self.wx = nn.Linear(input_size, hidden)
        self.wh = nn.Linear(hidden, hidden, bias=False)
        self.head = nn.Linear(hidden, num_classes)
        if kind == "none":
            self.norms = nn.ModuleList([nn.Identity()])
        elif kind == "bn":
            self.norms = nn.ModuleList([nn.BatchNorm1d(hidden)])
        elif kind == "bn_step":
            self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(steps))
        elif kind == "ln":
            self.norms = nn.ModuleList([nn.LayerNorm(hidden)])
        else:
            self.norms = nn.ModuleList([nn.GroupNorm(num_groups, hidden)])

    def norm_at(self, t: int) -> nn.Module:
        return self.norms[min(t, len(self.norms) - 1)]

    def forward(self, x, record: list | None = None):
        """Logits (B, classes); ``record`` (a list) receives the summed input of every step."""
        h = x.new_zeros(len(x), self.hidden)
        for t in range(x.shape[1]):
            a = self.wx(x[:, t]) + self.wh(h)
            if record is not None:
                record.append(a.detach())
            h = torch.tanh(self.norm_at(t)(a))
        return self.head(h)


class _StackedNorm(nn.Module):
    """Norm of ``k`` members of one RNN kind on a (B, k, H) tensor, per member."""

    def __init__(self, norms: list, hidden: int):
        super().__init__()
        k, m0 = len(norms), norms[0]
        self.k, self.hidden = k, hidden
        if isinstance(m0, nn.LayerNorm):
            self.kind = "ln"
            self.weight = nn.Parameter(torch.stack([m.weight.detach().clone() for m in norms]))
            self.bias = nn.Parameter(torch.stack([m.bias.detach().clone() for m in norms]))
            self.eps = m0.eps
        elif isinstance(m0, nn.GroupNorm):
            self.kind = "gn"
            self.gn = _merge_norms(norms)
        elif isinstance(m0, nn.BatchNorm1d):
            self.kind = "bn"
            self.bn = nn.BatchNorm1d(k * hidden, eps=m0.eps, momentum=m0.momentum)
            state = {key: (v.clone() if v.dim() == 0 else
                           torch.cat([m.state_dict()[key] for m in norms]))
                     for key, v in m0.state_dict().items()}
            self.bn.load_state_dict(state)
        else:
            self.kind = "none"

    def forward(self, a):  # a: (B, k, H)
        if self.kind == "ln":
            return F.layer_norm(a, (self.hidden,), eps=self.eps) * self.weight + self.bias
        if self.kind == "bn":
            return self.bn(a.reshape(len(a), -1)).reshape(a.shape)
        if self.kind == "gn":
            return self.gn(a.reshape(len(a), -1)).reshape(a.shape)
        return a

    def member_state(self, j: int) -> dict:
        if self.kind == "ln":
            return {"weight": self.weight[j].detach().clone(), "bias": self.bias[j].detach().clone()}
        if self.kind == "bn":
            H = self.hidden
            return {key: (v.clone() if v.dim() == 0 else v[j * H:(j + 1) * H].clone())
                    for key, v in self.bn.state_dict().items()}
        if self.kind == "gn":
            H = self.hidden
            return {key: v[j * H:(j + 1) * H].clone() for key, v in self.gn.state_dict().items()}
        return {}


class EnsembleRNN(nn.Module):
    """``K`` independent :class:`TinyRNN` members (same sizes and ``steps``) run at once.

    Input ``(B, K, T, D)`` (sequence ``x[:, k]`` for member ``k``) or ``(B, T, D)`` shared by
    all; output logits ``(B, K, classes)``. Members of one kind must be consecutive
    blocks; each block's norms are stacked into one module per time-step slot.
    """

    def __init__(self, members: Sequence[TinyRNN]):
        super().__init__()
        self.n_members = len(members)
        if self.n_members < 1:
            raise ValueError("an ensemble needs at least one member")
        m0 = members[0]
        if any(m.hidden != m0.hidden or m.steps != m0.steps for m in members):
            raise ValueError("all members need the same hidden size and number of steps")
        self.hidden, self.steps = m0.hidden, m0.steps
        self.templates = [copy.deepcopy(m) for m in members]
        stack = lambda ts: nn.Parameter(torch.stack([t.detach().clone() for t in ts]))
        self.wx = stack([m.wx.weight.T for m in members])  # (K, D, H)
        self.bx = stack([m.wx.bias for m in members])  # (K, H)
        self.wh = stack([m.wh.weight.T for m in members])  # (K, H, H)
        self.wo = stack([m.head.weight.T for m in members])  # (K, H, C)
        self.bo = stack([m.head.bias for m in members])  # (K, C)
        kinds = [m.kind for m in members]
        self.blocks = _blocks(kinds)
        self.block_kinds = [kinds[s] for s, _ in self.blocks]
        if len(set(self.block_kinds)) != len(self.block_kinds):
            raise ValueError("members of one kind must be consecutive")
        self.slots = nn.ModuleList()  # slots[block][slot]
        for (start, stop) in self.blocks:
            n_slots = len(members[start].norms)
            self.slots.append(nn.ModuleList(
                _StackedNorm([members[k].norms[s] for k in range(start, stop)], self.hidden)
                for s in range(n_slots)))
        self.to(m0.wx.weight.dtype)

    def forward(self, x):
        K = self.n_members
        if x.dim() == 3:
            x = x.unsqueeze(1).expand(-1, K, -1, -1)
        B, _, T, _ = x.shape
        h = x.new_zeros(B, K, self.hidden)
        for t in range(T):
            a = torch.einsum("bkd,kdh->bkh", x[:, :, t], self.wx) + self.bx
            a = a + torch.einsum("bki,kih->bkh", h, self.wh)
            parts = []
            for (start, stop), slots in zip(self.blocks, self.slots):
                parts.append(slots[min(t, len(slots) - 1)](a[:, start:stop]))
            h = torch.tanh(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))
        return torch.einsum("bkh,khc->bkc", h, self.wo) + self.bo

    def member(self, k: int) -> TinyRNN:
        """Member ``k`` as an ordinary :class:`TinyRNN` with the ensemble's current state."""
        net = copy.deepcopy(self.templates[k])
        b = next(i for i, (s, e) in enumerate(self.blocks) if s <= k < e)
        j = k - self.blocks[b][0]
        with torch.no_grad():
            net.wx.weight.copy_(self.wx[k].T)
            net.wx.bias.copy_(self.bx[k])
            net.wh.weight.copy_(self.wh[k].T)
            net.head.weight.copy_(self.wo[k].T)
            net.head.bias.copy_(self.bo[k])
            for s, slot in enumerate(self.slots[b]):
                state = slot.member_state(j)
                if state:
                    net.norms[s].load_state_dict(state)
        net.train(self.training)
        return net


# =============================================================================================
# Training and evaluation of an ensemble
# =============================================================================================


def short_renorm_schedule(steps: int) -> Callable[[int], tuple[float, float]]:
    """The paper's batch-renorm schedule (``normlab.renorm_schedule``) squeezed into ``steps``.

    Plain batch norm (r_max = 1, d_max = 0) for the first 10% of the steps, then d_max rises
    linearly to 5 at 30% and r_max to 3 at 50% (the paper: 5k, 25k and 40k steps).
    """
    warm = max(1, int(0.1 * steps))
    d_end = max(warm + 1, int(0.3 * steps))
    r_end = max(warm + 1, int(0.5 * steps))
    return lambda step: renorm_schedule(step, warmup_steps=warm, r_max_reached_at=r_end,
                                        d_max_reached_at=d_end)


def batch_indices(n: int, batch_size: int, steps: int, seed: int) -> torch.Tensor:
    """(steps, batch_size) indices: successive random permutations of range(n), each cut
    into full batches (an incomplete last batch of an epoch is dropped), seeded by ``seed``."""
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    per_epoch = n // batch_size
    epochs = -(-steps // per_epoch)
    rows = [torch.randperm(n, generator=gen)[: per_epoch * batch_size].view(per_epoch, -1)
            for _ in range(epochs)]
    return torch.cat(rows)[:steps]


def train_ensemble(model, X, y, seeds: Sequence[int], *, batch_size: int, steps: int,
                   lr: float | Sequence[float] = 3e-3, optimizer: str = "adam",
                   momentum: float = 0.9, renorm: Callable | None = None) -> None:
    """Train every member of an ensemble for ``steps`` steps, in place.

    ``X`` (n, ...) and ``y`` (n,) are tensors; member ``k`` draws its mini-batches with
    :func:`batch_indices` seeded by ``seeds[k]``. The loss is the sum over members of each
    member's mean cross-entropy, so each member gets the gradient it would get alone.
    ``optimizer="adam"`` (elementwise, so members stay independent; one ``lr``) or ``"sgd"``
    (heavy-ball momentum ``momentum``, no weight decay). With SGD, ``lr`` may be one learning
    rate per member: member ``k``'s loss is multiplied by ``lr[k]`` and the optimizer runs at
    learning rate 1, which is the same update because SGD with momentum is linear in the
    gradient. ``renorm(step) -> (r_max, d_max)`` sets every batch-renorm layer's limits
    before each step.
    """
    K = model.n_members
    if len(seeds) != K:
        raise ValueError(f"need one seed per member ({K}), got {len(seeds)}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    lrs = torch.as_tensor(np.broadcast_to(np.asarray(lr, dtype=float), (K,)).copy())
    if optimizer == "adam" and not torch.all(lrs == lrs[0]):
        raise ValueError("one learning rate per member needs optimizer='sgd' (Adam's update "
                         "does not scale with the gradient)")
    if not torch.all(lrs > 0):
        raise ValueError(f"learning rates must be positive, got {lrs.tolist()}")
    idx = torch.stack([batch_indices(len(X), batch_size, steps, s) for s in seeds], dim=-1)
    renorm_layers = [m for m in model.modules() if isinstance(m, (BatchRenorm1d, BatchRenorm2d))]
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=float(lrs[0]), fused=True)
        weight = torch.ones(K)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=momentum, foreach=True)
        weight = lrs
    model.train()
    for step in range(steps):
        if renorm is not None:
            r_max, d_max = renorm(step)
            for m in renorm_layers:
                m.r_max, m.d_max = r_max, d_max
        batch = idx[step]  # (B, K)
        xb = X[batch]  # (B, K, ...)
        if xb.dim() == 5 and xb.shape[2] == 1:  # images (n, 1, 8, 8) -> (B, K, 8, 8)
            xb = xb[:, :, 0]
        logits = model(xb)  # (B, K, classes)
        per_member = F.cross_entropy(logits.permute(0, 2, 1), y[batch],
                                     reduction="none").mean(0)  # (K,)
        loss = (per_member * weight.to(per_member.dtype)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def eval_logits(model, X) -> torch.Tensor:
    """Logits (B, K, classes) of every member in eval mode, without gradients; the model's
    mode is restored afterwards."""
    was = model.training
    model.eval()
    with torch.no_grad():
        logits = model(X)
    model.train(was)
    return logits


def eval_accuracy(model, X, y) -> np.ndarray:
    """Accuracy of every member in eval mode on (X, y), one forward pass: shape (K,)."""
    return (eval_logits(model, X).argmax(-1) == y[:, None]).double().mean(0).numpy()


def train_mode_accuracy(model, X, y, batch_size: int) -> np.ndarray:
    """Accuracy of every member in TRAINING mode, on consecutive batches of ``batch_size``.

    Batch statistics of each test batch are used, as during training; the model is copied
    first, so its running statistics are not touched. An incomplete last batch is dropped.
    Shape (K,).
    """
    net = copy.deepcopy(model).train()
    n = (len(X) // batch_size) * batch_size
    correct = 0.0
    with torch.no_grad():
        for i in range(0, n, batch_size):
            logits = net(X[i:i + batch_size])
            correct = correct + (logits.argmax(-1) == y[i:i + batch_size, None]).double().sum(0)
    return (correct / n).numpy()


@dataclass
class SweepResult:
    """A batch-size sweep run with Wu and He's protocol (:func:`batch_size_sweep`).

    ``base_lrs``: the learning-rate grid at the reference batch ``ref_batch``;
    ``val_acc_grid[kind]`` (len(base_lrs), len(lr_seeds)): validation accuracy of each grid
    point at ``ref_batch``; ``chosen_lr[kind]``: the grid value with the best mean validation
    accuracy. ``eval_acc[kind]``, ``train_mode_acc[kind]``: arrays (len(batch_sizes),
    len(seeds)) of test accuracy in eval and in training mode, trained at
    ``chosen_lr[kind] * batch / ref_batch`` for ``epochs`` epochs (``steps[batch]`` steps),
    measured on the first ``n_test`` test images.
    """

    kinds: tuple
    batch_sizes: tuple
    seeds: tuple
    epochs: int
    ref_batch: int
    base_lrs: tuple
    lr_seeds: tuple
    n_fit: int = 0
    n_val: int = 0
    n_test: int = 0
    steps: dict = field(default_factory=dict)
    val_acc_grid: dict = field(default_factory=dict)
    chosen_lr: dict = field(default_factory=dict)
    eval_acc: dict = field(default_factory=dict)
    train_mode_acc: dict = field(default_factory=dict)

    def lr_at(self, kind: str, batch_size: int) -> float:
        """The learning rate ``kind`` was trained with at ``batch_size`` (linear scaling)."""
        return self.chosen_lr[kind] * batch_size / self.ref_batch


def validation_split(n: int, n_val: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (fit, validation) of a seeded random split of ``range(n)``, ``n_val`` held out."""
    if not 0 < n_val < n:
        raise ValueError(f"n_val must be in (0, {n}), got {n_val}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:], perm[:n_val]


def batch_size_sweep(data, kinds=("none", "bn", "gn", "ln"),
                     batch_sizes=(2, 4, 8, 16, 32), seeds=(0, 1, 2, 3, 4), *, epochs: int = 2,
                     base_lrs=(0.003, 0.01, 0.03, 0.1, 0.3), lr_seeds=(0, 1),
                     ref_batch: int = 32,
                     n_val: int = 300, width: int = 8, num_groups: int = 4) -> SweepResult:
    """Wu and He's batch-size protocol for :func:`tiny_cnn`, scaled down.

    ``data = (X_train, y_train, X_test, y_test)`` tensors, images (n, 1, 8, 8). ``n_val``
    training images are held out (:func:`validation_split`) and the rest, ``n_fit`` images,
    are trained on with SGD (momentum 0.9) for the same number of ``epochs`` at every batch
    size, with the learning rate scaled linearly with the batch: ``lr(B) = lr0 * B /
    ref_batch`` (Goyal et al. 2017, as Wu and He 2018 use). Batch renorm follows
    :func:`short_renorm_schedule` over each run's steps.

    1. The base learning rate ``lr0`` of each kind is chosen from ``base_lrs`` at
       ``ref_batch`` by the mean validation accuracy (eval mode) over ``lr_seeds``.
    2. Every kind is trained at every batch size with every seed at its chosen ``lr0``; test
       accuracy in eval mode and (:func:`train_mode_accuracy`) in training mode with test
       batches of the training batch size, on the first ``n_test`` test images (a multiple of
       every batch size).

    Seed ``s`` fixes a member's initial weights (the same for every kind) and its batch
    order. All runs of one stage and batch size train at once as one :class:`EnsembleCNN`.
    """
    X_train, y_train, X_test, y_test = data
    fit, val = validation_split(len(X_train), n_val)
    X_fit, y_fit, X_val, y_val = X_train[fit], y_train[fit], X_train[val], y_train[val]
    lcm = math.lcm(*batch_sizes)
    n_test = (len(X_test) // lcm) * lcm
    X_test, y_test = X_test[:n_test], y_test[:n_test]
    res = SweepResult(tuple(kinds), tuple(batch_sizes), tuple(seeds), epochs, ref_batch,
                      tuple(base_lrs), tuple(lr_seeds), n_fit=len(fit), n_val=len(val),
                      n_test=n_test)

    def train(spec, batch_size):
        """spec: [(kind, lr, seed)]; returns the trained ensemble."""
        model = EnsembleCNN([tiny_cnn(k, width, num_groups, seed=s) for k, _, s in spec])
        steps = epochs * (len(X_fit) // batch_size)
        res.steps[batch_size] = steps
        train_ensemble(model, X_fit, y_fit, [s for _, _, s in spec], batch_size=batch_size,
                       steps=steps, lr=[lr for _, lr, _ in spec], optimizer="sgd",
                       renorm=short_renorm_schedule(steps))
        return model

    # 1. the learning rate of each kind, on the validation split
    spec = [(k, lr, s) for k in kinds for lr in base_lrs for s in lr_seeds]
    val_acc = eval_accuracy(train(spec, ref_batch), X_val, y_val)
    for k in kinds:
        grid = np.array([[val_acc[spec.index((k, lr, s))] for s in lr_seeds] for lr in base_lrs])
        res.val_acc_grid[k] = grid
        res.chosen_lr[k] = float(base_lrs[int(np.argmax(grid.mean(1)))])
    # 2. every kind, batch size and seed at the chosen learning rate
    for k in kinds:
        res.eval_acc[k] = np.full((len(batch_sizes), len(seeds)), np.nan)
        res.train_mode_acc[k] = np.full((len(batch_sizes), len(seeds)), np.nan)
    for b, bs in enumerate(batch_sizes):
        spec = [(k, res.lr_at(k, bs), s) for k in kinds for s in seeds]
        model = train(spec, bs)
        ev = eval_accuracy(model, X_test, y_test)
        tm = train_mode_accuracy(model, X_test, y_test, bs)
        for j, (k, _, s) in enumerate(spec):
            res.eval_acc[k][b, seeds.index(s)] = ev[j]
            res.train_mode_acc[k][b, seeds.index(s)] = tm[j]
    return res


def per_step_renorm_factors(rnn: TinyRNN, X) -> tuple[np.ndarray, np.ndarray]:
    """Batch renorm's r and d, per time step, for an RNN whose batch norm is shared over time.

    Runs a copy of ``rnn`` (kind "bn") in training mode on ``X`` (B, T, D), records the summed
    input a_t (B, H) of every step and compares its batch statistics with the ONE set of
    running statistics the layer keeps for all steps::

        r_t = sigma_t / sigma,   d_t = (mu_t - running_mean) / sigma,
        sigma_t = sqrt(var_t + eps),  sigma = sqrt(running_var + eps)   (per unit)

    r_t = 1 and d_t = 0 would mean that eval mode normalizes step t exactly as training
    did. Returns ``(r, d)``, each (T, H). The copy's running statistics are discarded.
    """
    if rnn.kind != "bn":
        raise ValueError(f"needs an RNN with one shared batch norm (kind 'bn'), got {rnn.kind!r}")
    net = copy.deepcopy(rnn).train()
    bn = rnn.norms[0]
    record: list = []
    with torch.no_grad():
        net(X, record=record)
    a = torch.stack(record).double()  # (T, B, H)
    sigma = torch.sqrt(bn.running_var.double() + bn.eps)
    sigma_t = torch.sqrt(a.var(1, unbiased=False) + bn.eps)
    r = sigma_t / sigma
    d = (a.mean(1) - bn.running_mean.double()) / sigma
    return r.numpy(), d.numpy()


# =============================================================================================
# Weight normalization and spectral normalization
# =============================================================================================


def weightnorm_descent(X, y, *, lr: float, steps: int, seed: int = 0, g0: float = 1.0):
    """Gradient descent on a weight-normalized logistic regression, numpy and normlab only.

    Model ``p = sigmoid(X w + b)``, ``w = g v / ||v||`` (``normlab.weightnorm_forward`` with
    ``dim=None``: one length g for the whole vector), mean binary cross-entropy. ``v`` starts
    as N(0, I) (seeded), ``g = g0``. Returns a dict of arrays over the steps 0..steps:
    ``v_norm`` (||v_t||), ``v_dot_grad`` (v_t . dL/dv_t, zero in exact arithmetic),
    ``grad_norm`` (||dL/dv_t||), ``g`` and ``loss``.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(X.shape[1])
    g, b = np.array(g0, dtype=np.float64), 0.0
    rec = {k: [] for k in ("v_norm", "v_dot_grad", "grad_norm", "g", "loss")}
    for _ in range(steps + 1):
        w, cache = weightnorm_forward(v, g, dim=None)
        z = X @ w + b
        p = 1.0 / (1.0 + np.exp(-z))
        loss = float(np.mean(np.logaddexp(0.0, z) - y * z))
        dz = (p - y) / len(y)
        dv, dg = weightnorm_backward(X.T @ dz, cache)
        rec["v_norm"].append(float(np.linalg.norm(v)))
        rec["v_dot_grad"].append(float(v @ dv))
        rec["grad_norm"].append(float(np.linalg.norm(dv)))
        rec["g"].append(float(g))
        rec["loss"].append(loss)
        v, g, b = v - lr * dv, g - lr * dg, b - lr * float(dz.sum())
    return {k: np.asarray(a) for k, a in rec.items()}


def power_iteration_errors(W, n_iterations: int, seed: int = 0) -> np.ndarray:
    """Relative error of the power-iteration estimate of the top singular value of ``W``.

    Starts from a random unit ``v`` (seeded) and runs ``normlab.spectralnorm.power_iteration``
    one iteration at a time; after iteration k (1..n_iterations) the estimate is
    ``sigma_k = u . W v`` and the error ``|sigma_k - sigma_1| / sigma_1`` with sigma_1 from
    ``numpy.linalg.svd``. Returns shape (n_iterations,).
    """
    W_mat = weight_to_matrix(np.asarray(W, dtype=np.float64)) if np.ndim(W) > 2 else np.asarray(W, dtype=np.float64)
    sigma_1 = np.linalg.svd(W_mat, compute_uv=False)[0]
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(W_mat.shape[1])
    v /= np.linalg.norm(v)
    u = np.zeros(W_mat.shape[0])
    errors = np.empty(n_iterations)
    for k in range(n_iterations):
        u, v = power_iteration(W_mat, u, v, 1)
        errors[k] = abs(float(u @ W_mat @ v) - sigma_1) / sigma_1
    return errors


def lipschitz_ratios(weights: Sequence[np.ndarray], n_pairs: int = 2000, seed: int = 0,
                     scale: float = 1.0) -> np.ndarray:
    """``||f(x) - f(y)|| / ||x - y||`` for random pairs, ``f`` a ReLU MLP with ``weights``.

    ``f(x) = W_L relu(... relu(W_1 x))`` (no biases: they cancel in f(x) - f(y)); x ~ N(0, I)
    and ``y = x + scale * N(0, I)``, seeded. Each ratio is at most the product of the
    spectral norms of the W_i (ReLU is 1-Lipschitz). Shape (n_pairs,).
    """
    rng = np.random.default_rng(seed)
    d = weights[0].shape[1]
    x = rng.standard_normal((n_pairs, d))
    y = x + scale * rng.standard_normal((n_pairs, d))

    def f(z):
        for i, W in enumerate(weights):
            z = z @ W.T
            if i < len(weights) - 1:
                z = np.maximum(z, 0.0)
        return z

    return np.linalg.norm(f(x) - f(y), axis=1) / np.linalg.norm(x - y, axis=1)


def jacobian_norms(weights: Sequence[np.ndarray], n_points: int = 500, seed: int = 0) -> np.ndarray:
    """Spectral norm of the Jacobian of the ReLU MLP of :func:`lipschitz_ratios` at random x.

    At x ~ N(0, I) (seeded) the MLP is linear nearby, ``J(x) = W_L D_{L-1} ... D_1 W_1`` with
    ``D_i`` the 0/1 diagonal of active ReLUs; ``||J(x)||_2`` is the largest stretch of any
    small step from x (the worst direction, unlike a random pair). It is at most the product
    of the spectral norms of the W_i. Shape (n_points,).
    """
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((n_points, weights[0].shape[1]))
    out = np.empty(n_points)
    for i, x in enumerate(xs):
        J = np.eye(len(x))
        z = x
        for j, W in enumerate(weights):
            z = W @ z
            J = W @ J
            if j < len(weights) - 1:
                active = z > 0
                z = np.where(active, z, 0.0)
                J = J * active[:, None]
        out[i] = np.linalg.norm(J, 2)
    return out


# =============================================================================================
# Facts for the comparison table
# =============================================================================================


def batch_dependence(kind: str, shape=(8, 4, 3, 3), num_groups: int = 2, seed: int = 0) -> float:
    """How much sample 0's normalized output changes when the REST of the batch is replaced.

    ``max |out_1[0] - out_2[0]|`` for two batches that share sample 0 and differ elsewhere
    (seeded normal data, :func:`normalize_as`). 0 means "independent of the batch".
    """
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    b = 3.0 + 2.0 * rng.standard_normal(shape)
    b[0] = a[0]
    return float(np.max(np.abs(normalize_as(kind, a, num_groups)[0]
                               - normalize_as(kind, b, num_groups)[0])))


def _table_module(kind: str, channels: int, spatial: bool, num_groups: int = 2) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels) if spatial else nn.BatchNorm1d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels) if spatial else nn.InstanceNorm1d(channels)
    if kind == "group":
        return nn.GroupNorm(num_groups, channels)
    raise ValueError(f"kind must be one of {NORM_KINDS}, got {kind!r}")


def train_eval_difference(kind: str, channels: int = 4, batches: int = 20, seed: int = 0) -> float:
    """``max |train-mode output - eval-mode output|`` of torch's layer for ``kind``.

    The layer (BatchNorm2d, GroupNorm(1, C) for layer norm, InstanceNorm2d with torch's
    defaults, GroupNorm(2, C)) first sees ``batches`` training batches of shifted, scaled
    random (8, C, 4, 4) data; then one more batch goes through it in both modes.
    """
    gen = torch.Generator().manual_seed(seed)
    layer = _table_module(kind, channels, spatial=True)
    layer.train()
    with torch.no_grad():
        for _ in range(batches):
            layer(2.0 + 3.0 * torch.randn(8, channels, 4, 4, generator=gen))
        x = 2.0 + 3.0 * torch.randn(8, channels, 4, 4, generator=gen)
        probe = copy.deepcopy(layer)  # the training forward would update running stats
        out_train = probe.train()(x)
        out_eval = layer.eval()(x)
    return float((out_train - out_eval).abs().max())


def batch_of_one(kind: str, channels: int = 4, spatial: bool = False) -> str:
    """What torch's layer for ``kind`` does in training mode on a batch of ONE sample.

    Input (1, C) (a feature vector, e.g. after a linear layer or an RNN step; (1, C, 1) for
    instance norm, whose 1-d layer reads a 2-D input as one unbatched sample) or, with
    ``spatial=True``, (1, C, 4, 4). Returns "works", "output is all 0" (every normalized
    group has a single value) or "error: <message>".
    """
    layer = _table_module(kind, channels, spatial).train()
    gen = torch.Generator().manual_seed(0)
    if spatial:
        x = torch.randn(1, channels, 4, 4, generator=gen)
    elif kind == "instance":  # InstanceNorm1d reads a 2-D input as UNbatched (C, L)
        x = torch.randn(1, channels, 1, generator=gen)
    else:
        x = torch.randn(1, channels, generator=gen)
    try:
        with torch.no_grad():
            out = layer(x)
    except (ValueError, RuntimeError) as e:
        return "error: " + str(e).split(",")[0]
    if float(out.abs().max()) == 0.0:
        return "output is all 0"
    return "works"
