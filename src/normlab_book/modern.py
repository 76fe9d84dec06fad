"""Experiments of chapter 7, "Normalization in today's architectures".

Two families of small networks for the 8x8 digits, each written as an *ensemble*: ``K``
independent members (one per seed) computed at once, so that five or more seeds cost about as
much as one. Members share nothing: member ``k`` has its own weights (drawn from
``torch.Generator().manual_seed(seeds[k])``), its own normalization statistics and, in
training, its own mini-batches; the summed loss gives each member its own gradient. Both
classes follow the interface of :func:`normlab_book.alternatives.train_ensemble` and
:func:`~normlab_book.alternatives.eval_accuracy`: input ``(B, K, 8, 8)`` (image ``x[:, k]`` for
member ``k``) or ``(B, 8, 8)`` / ``(B, 1, 8, 8)`` shared by all, output logits ``(B, K, 10)``.

**Residual networks with batch norm** (:class:`ResNetEnsemble`): a stem (3x3 conv, norm, ReLU,
2x2 max-pool to 4x4), ``depth`` residual blocks of two 3x3 convolutions at ``width`` channels,
global average pooling and a linear head. ``kind`` chooses where batch norm sits
(:data:`RESNET_KINDS`)::

    "post"       h <- relu(h + BN2(conv2(relu(BN1(conv1(h))))))       He et al. 2016 (v1)
    "post_zero"  the same, with the last BN's gamma initialised to 0     Goyal et al. 2017
    "after_add"  h <- relu(BN2(h + conv2(relu(BN1(conv1(h))))))       BN on the trunk
    "pre"        h <- h + conv2(relu(BN2(conv1(relu(BN1(h))))))       He et al. 2016 (v2)
    "none"       h <- relu(h + conv2(relu(conv1(h) + b1)) + b2)       no normalization

Convolutions use He initialization (std sqrt(2 / fan_in)).

**Transformer encoders** (:class:`TransformerEnsemble`): each image is a sequence of its 8 rows
(8 tokens of 8 pixels), embedded to ``d_model`` with a learned position embedding, ``depth``
blocks of single-head self-attention and a ReLU MLP, mean-pooled and classified. ``kind``
(:data:`TRANSFORMER_KINDS`)::

    "post_ln"   x <- LN(x + attn(x));  x <- LN(x + mlp(x))              Vaswani et al. 2017
    "pre_ln"    x <- x + attn(LN(x));  x <- x + mlp(LN(x)); final LN    Xiong et al. 2020
    "pre_rms"   as "pre_ln" with RMSNorm (no centring, no shift)        Zhang and Sennrich 2019
    "none"      as "pre_ln" with the norms removed

:func:`trunk_stds` and :func:`layer_grad_norms` measure a net at initialization: the spread of
the residual stream after each block, and the gradient norm of each block's parameters.
:func:`linear_warmup` adds a learning-rate warm-up to any training loop that builds its own
optimizer, such as :func:`~normlab_book.alternatives.train_ensemble`.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "RESNET_KINDS",
    "TRANSFORMER_KINDS",
    "ResNetEnsemble",
    "TransformerEnsemble",
    "trunk_stds",
    "layer_grad_norms",
    "train_loss",
    "linear_warmup",
]

RESNET_KINDS = ("post", "post_zero", "after_add", "pre", "none")
TRANSFORMER_KINDS = ("post_ln", "pre_ln", "pre_rms", "none")


def _he(gen: torch.Generator, shape, fan_in: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen) * math.sqrt(2.0 / fan_in)


def _images(x: torch.Tensor, K: int) -> torch.Tensor:
    """(B, K, 8, 8) from (B, K, 8, 8), (B, 8, 8) or (B, 1, 8, 8) (shared by all members)."""
    if x.dim() == 4 and x.shape[1] == 1 and K > 1:
        x = x[:, 0]
    if x.dim() == 3:
        x = x.unsqueeze(1).expand(-1, K, -1, -1)
    if x.dim() != 4 or x.shape[1] != K:
        raise ValueError(f"expected images (B, {K}, H, W), (B, H, W) or (B, 1, H, W), "
                         f"got shape {tuple(x.shape)}")
    return x


class ResNetEnsemble(nn.Module):
    """``len(seeds)`` small residual networks with batch norm placed as ``kind``, run at once.

    See the module docstring for the blocks. Member ``k``'s weights are drawn from
    ``torch.Generator().manual_seed(seeds[k])`` in a fixed order, so a member does not depend
    on the other members (an ensemble of one seed is that member alone). Batch-norm layers
    are ``nn.BatchNorm2d`` over all members' channels, which is per member because batch
    norm's statistics are per channel.
    """

    def __init__(self, kind: str, seeds: Sequence[int], depth: int = 8, width: int = 8,
                 num_classes: int = 10):
        super().__init__()
        if kind not in RESNET_KINDS:
            raise ValueError(f"kind must be one of {RESNET_KINDS}, got {kind!r}")
        if depth < 1 or width < 1 or len(seeds) < 1:
            raise ValueError(f"need depth >= 1, width >= 1 and at least one seed, got "
                             f"depth={depth}, width={width}, seeds={list(seeds)}")
        self.kind, self.depth, self.width = kind, depth, width
        self.n_members = K = len(seeds)
        C = width
        stem, convs, head = [], [[] for _ in range(2 * depth)], []
        for s in seeds:
            gen = torch.Generator().manual_seed(int(s))
            stem.append(_he(gen, (C, 1, 3, 3), 9))
            for i in range(2 * depth):
                convs[i].append(_he(gen, (C, C, 3, 3), 9 * C))
            head.append(torch.randn(C, num_classes, generator=gen) / math.sqrt(C))
        self.stem = nn.Parameter(torch.cat(stem))
        self.convs = nn.ParameterList(nn.Parameter(torch.cat(c)) for c in convs)
        self.head_weight = nn.Parameter(torch.stack(head))  # (K, C, classes)
        self.head_bias = nn.Parameter(torch.zeros(K, num_classes))
        norm = kind != "none"
        self.final_norm = None
        self.stem_norm = nn.BatchNorm2d(K * C) if norm else None
        self.stem_bias = None if norm else nn.Parameter(torch.zeros(K * C))
        if norm:
            self.norms = nn.ModuleList(nn.BatchNorm2d(K * C) for _ in range(2 * depth))
            if kind == "post_zero":
                with torch.no_grad():
                    for bn in self.norms[1::2]:
                        bn.weight.zero_()
            self.final_norm = nn.BatchNorm2d(K * C) if kind == "pre" else None
        else:
            self.biases = nn.ParameterList(nn.Parameter(torch.zeros(K * C))
                                           for _ in range(2 * depth))

    def _conv(self, h, w):
        return F.conv2d(h, w, padding=1, groups=self.n_members)

    def forward(self, x, record: list | None = None):
        """Logits (B, K, classes); ``record`` (a list) receives the trunk after every block."""
        K, C = self.n_members, self.width
        h = self._conv(_images(x, K), self.stem)
        h = self.stem_norm(h) if self.stem_norm is not None else h + self.stem_bias[:, None, None]
        h = F.max_pool2d(F.relu(h), 2)
        for i in range(self.depth):
            w1, w2 = self.convs[2 * i], self.convs[2 * i + 1]
            if self.kind in ("post", "post_zero"):
                r = self.norms[2 * i + 1](self._conv(F.relu(self.norms[2 * i](self._conv(h, w1))), w2))
                h = F.relu(h + r)
            elif self.kind == "after_add":
                r = self._conv(F.relu(self.norms[2 * i](self._conv(h, w1))), w2)
                h = F.relu(self.norms[2 * i + 1](h + r))
            elif self.kind == "pre":
                r = self._conv(F.relu(self.norms[2 * i + 1](
                    self._conv(F.relu(self.norms[2 * i](h)), w1))), w2)
                h = h + r
            else:
                b1, b2 = self.biases[2 * i][:, None, None], self.biases[2 * i + 1][:, None, None]
                h = F.relu(h + self._conv(F.relu(self._conv(h, w1) + b1), w2) + b2)
            if record is not None:
                record.append(h.detach())
        if self.final_norm is not None:
            h = F.relu(self.final_norm(h))
        pooled = h.mean((2, 3)).reshape(len(h), K, C)
        return torch.einsum("bkc,kco->bko", pooled, self.head_weight) + self.head_bias


class TransformerEnsemble(nn.Module):
    """``len(seeds)`` small Transformer encoders (digit rows as tokens), run at once.

    See the module docstring for ``kind``. Single-head attention of width ``d_model``, MLP
    ``d_model -> 2 d_model -> d_model``, norms over the last axis (``eps`` 1e-5) with one
    gain (and, for layer norm, one shift) per block, norm position and member. Weights are
    drawn per member from ``torch.Generator().manual_seed(seed)`` (Xavier-style
    ``1/sqrt(fan_in)`` scaling), biases start at 0, gains at 1.
    """

    def __init__(self, kind: str, seeds: Sequence[int], depth: int = 6, d_model: int = 16,
                 tokens: int = 8, token_size: int = 8, num_classes: int = 10):
        super().__init__()
        if kind not in TRANSFORMER_KINDS:
            raise ValueError(f"kind must be one of {TRANSFORMER_KINDS}, got {kind!r}")
        if depth < 1 or len(seeds) < 1:
            raise ValueError(f"need depth >= 1 and at least one seed, got depth={depth}, "
                             f"seeds={list(seeds)}")
        self.kind, self.depth, self.d = kind, depth, d_model
        self.n_members = K = len(seeds)
        d, L = d_model, depth
        draws = {n: [] for n in ("emb", "pos", "qkv", "out", "w1", "w2", "head")}
        for s in seeds:
            gen = torch.Generator().manual_seed(int(s))
            r = lambda *shape, fan: torch.randn(*shape, generator=gen) / math.sqrt(fan)
            draws["emb"].append(r(token_size, d, fan=token_size))
            draws["pos"].append(r(tokens, d, fan=1) * 0.1)
            draws["qkv"].append(r(L, d, 3 * d, fan=d))
            draws["out"].append(r(L, d, d, fan=d))
            draws["w1"].append(r(L, d, 2 * d, fan=d))
            draws["w2"].append(r(L, 2 * d, d, fan=2 * d))
            draws["head"].append(r(d, num_classes, fan=d))
        for name, ts in draws.items():
            setattr(self, name, nn.Parameter(torch.stack(ts)))
        self.b1 = nn.Parameter(torch.zeros(K, L, 2 * d))
        self.b2 = nn.Parameter(torch.zeros(K, L, d))
        self.head_bias = nn.Parameter(torch.zeros(K, num_classes))
        self.gain = nn.Parameter(torch.ones(K, L + 1, 2, d))   # [block, position (attn, mlp)]
        self.shift = nn.Parameter(torch.zeros(K, L + 1, 2, d)) if kind == "post_ln" or \
            kind == "pre_ln" else None

    def _norm(self, x, layer: int, pos: int):
        if self.kind == "none":
            return x
        g = self.gain[:, layer, pos][None, :, None, :]
        if self.kind == "pre_rms":
            return F.rms_norm(x, (self.d,), eps=1e-5) * g
        return F.layer_norm(x, (self.d,), eps=1e-5) * g + self.shift[:, layer, pos][None, :, None, :]

    def _attn(self, z, layer: int):
        q, k, v = torch.einsum("bkte,kef->bktf", z, self.qkv[:, layer]).split(self.d, dim=-1)
        att = torch.softmax(torch.einsum("bktf,bksf->bkts", q, k) / math.sqrt(self.d), dim=-1)
        return torch.einsum("bkts,bksf->bktf", att, v) @ self.out[:, layer][None]

    def _mlp(self, z, layer: int):
        hid = F.relu(z @ self.w1[:, layer][None] + self.b1[:, layer][None, :, None])
        return hid @ self.w2[:, layer][None] + self.b2[:, layer][None, :, None]

    def forward(self, x, record: list | None = None):
        """Logits (B, K, classes); ``record`` receives the residual stream after every block."""
        x = _images(x, self.n_members)  # (B, K, tokens, token_size)
        h = torch.einsum("bktp,kpd->bktd", x, self.emb) + self.pos[None]
        for layer in range(self.depth):
            if self.kind == "post_ln":
                h = self._norm(h + self._attn(h, layer), layer, 0)
                h = self._norm(h + self._mlp(h, layer), layer, 1)
            else:
                h = h + self._attn(self._norm(h, layer, 0), layer)
                h = h + self._mlp(self._norm(h, layer, 1), layer)
            if record is not None:
                record.append(h.detach())
        if self.kind != "post_ln":
            h = self._norm(h, self.depth, 0)
        return torch.einsum("bkd,kdo->bko", h.mean(2), self.head) + self.head_bias

    def block_parameters(self, layer: int) -> list[torch.Tensor]:
        """The weight tensors of block ``layer`` (all members): attention, output and MLP."""
        return [self.qkv, self.out, self.w1, self.w2]


def trunk_stds(model, X) -> np.ndarray:
    """Spread of the residual stream after each block at the model's current weights.

    Runs ``model`` in training mode (batch statistics, as in the first training step) on
    ``X`` without updating anything it keeps (the running statistics are restored) and
    returns an array (depth, K): the standard deviation over samples and features of member
    ``k``'s trunk after block ``l``.
    """
    state = {k: v.clone() for k, v in model.state_dict().items()}
    record: list = []
    was = model.training
    model.train()
    with torch.no_grad():
        model(X, record=record)
    model.load_state_dict(state)
    model.train(was)
    K = model.n_members
    out = []
    for h in record:
        if h.dim() == 4 and isinstance(model, ResNetEnsemble):  # (B, K*C, H, W)
            h = h.reshape(len(h), K, -1)
        else:  # (B, K, T, d)
            h = h.reshape(len(h), K, -1)
        out.append(h.transpose(0, 1).reshape(K, -1).std(dim=1).numpy())
    return np.array(out)


def train_loss(model, X, y) -> np.ndarray:
    """Mean cross-entropy of every member on (X, y) in eval mode, shape (K,)."""
    from normlab_book.alternatives import eval_logits

    logits = eval_logits(model, X)
    return F.cross_entropy(logits.permute(0, 2, 1), y[:, None].expand(-1, logits.shape[1]),
                           reduction="none").mean(0).numpy()


def layer_grad_norms(model: TransformerEnsemble, X, y) -> np.ndarray:
    """Gradient norm of each block's weights at the current weights, shape (depth, K).

    One forward and backward pass of the summed mean cross-entropy on (X, y) (training mode);
    entry (l, k) is the norm of the gradient of member ``k``'s attention, output and MLP
    weights of block ``l`` together. The model's gradients are cleared afterwards.
    """
    model.zero_grad(set_to_none=True)
    logits = model(X)
    loss = F.cross_entropy(logits.permute(0, 2, 1), y[:, None].expand(-1, logits.shape[1]),
                           reduction="none").mean(0).sum()
    loss.backward()
    sq = sum(p.grad.pow(2).flatten(2).sum(-1) for p in (model.qkv, model.out, model.w1, model.w2))
    model.zero_grad(set_to_none=True)
    return sq.sqrt().T.detach().numpy()  # (K, depth) -> (depth, K)


@contextlib.contextmanager
def linear_warmup(warmup_steps: int) -> Iterator[None]:
    """Linear learning-rate warm-up for every optimizer stepped inside the ``with`` block.

    Step ``t`` (counted from 0, per optimizer) runs at ``min(1, (t + 1) / warmup_steps)``
    times the learning rate the optimizer was created with, as
    ``torch.optim.lr_scheduler.LambdaLR`` with that factor would; from step
    ``warmup_steps - 1`` on, at the full rate. Implemented with torch's global optimizer
    step pre-hook, removed on exit, so a loop that builds its own optimizer (such as
    :func:`normlab_book.alternatives.train_ensemble`) needs no change.
    """
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 1:
        raise ValueError(f"warmup_steps must be an integer >= 1, got {warmup_steps!r}")
    seen: dict[int, list] = {}  # id(optimizer) -> [steps taken, base lr of each group]

    def hook(opt, args, kwargs):
        state = seen.setdefault(id(opt), [0, [g["lr"] for g in opt.param_groups]])
        frac = min(1.0, (state[0] + 1) / warmup_steps)
        for group, base in zip(opt.param_groups, state[1]):
            group["lr"] = base * frac
        state[0] += 1

    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handle = register_optimizer_step_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()
