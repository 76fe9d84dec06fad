"""Internal covariate shift and what batch normalization does to optimization (chapter 5).

Two kinds of tools live here.

**Many small MLPs trained at once.** The chapter's claims need sweeps (several seeds x several
learning rates x with/without BN). Training each net separately costs a Python loop per net;
:class:`EnsembleMLP` holds ``R`` independent MLPs as stacked weight tensors and evaluates all
of them with one batched matrix product per layer. Members share nothing: member ``r`` sees
its own initial weights, its own mini-batch order and its own learning rate, and its loss only
depends on its own parameters, so the summed loss gives every member exactly the gradient it
would get alone. Batch normalization is applied per member (statistics over that member's
batch only) by laying the ``R`` members side by side as ``R * H`` channels of one
``torch.nn.BatchNorm1d`` (or of any per-channel normalization module, such as
:class:`normlab.torch_modules.NoisyBatchNorm1d`). :func:`train_ensemble` reproduces
:func:`normlab.training.train` for every member (same batch order for the same seed, same
SGD/Adam update); the tests check it against ``training.train`` step by step.

**Measurements of Santurkar et al. (2018)** (:func:`gradient_change`,
:func:`landscape_along_gradient`, :func:`probe_stats`, :func:`drift_summary`,
:func:`functional_loss`, :func:`layer_gradient_norms`): defined and described in
:mod:`normlab.ics` (the graded exercise's references) and re-exported here. They work on a
functional loss, so they apply to one ``nn.Module`` and to an ensemble alike.

**The chapter's controlled experiments.** :class:`MemberNorm` gives every member its own
normalization (BN, Santurkar et al.'s noisy BN, a slow systematic drift, an l1 "batch norm"
that fixes no variance) and :class:`injection_off` switches the injected noise and drift off,
so that a probe separates what is injected from what the parameters move.
``train_ensemble(..., lr_multipliers=...)`` gives a parameter of a member its own learning-rate
factor (the compensated initial-scale runs), ``EnsembleMLP(..., scale_output=False)`` scales
only the layers that feed a normalization, :func:`member_split_tensors` gives every member its
own ``train_test_split`` split, and :func:`recalibrate_batchnorm` replaces lagging running
statistics by the training set's own for evaluation.

:func:`track_training` trains an ensemble with SGD and takes all these measurements along the
way without disturbing the run; :func:`drift_summary` and :func:`largest_stable` reduce the
records to the numbers the chapter prints. ``EnsembleMLP(..., norm_members=...)`` lets
members with and without a normalization share one ensemble.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

# Santurkar et al.'s measurements are references of the graded exercise: they live in normlab.
from normlab.ics import (
    drift_summary,
    functional_loss,
    gradient_change,
    landscape_along_gradient,
    layer_gradient_norms,
    member_losses,
    probe_stats,
)

__all__ = [
    "EnsembleMLP",
    "EnsembleHistory",
    "train_ensemble",
    "evaluate_ensemble",
    "member_losses",
    "functional_loss",
    "gradient_change",
    "landscape_along_gradient",
    "probe_stats",
    "layer_gradient_norms",
    "preceding_parameters",
    "Tracked",
    "track_training",
    "drift_summary",
    "largest_stable",
    "MemberNorm",
    "injection_off",
    "member_split_tensors",
    "recalibrate_batchnorm",
]


# ---------------------------------------------------------------------------------------------
# Many MLPs at once
# ---------------------------------------------------------------------------------------------


def _make_norm(norm, width: int):
    if norm is None:
        return None
    if norm == "bn":
        return nn.BatchNorm1d(width)
    if isinstance(norm, str):
        raise ValueError(f"norm must be None, 'bn' or a callable width -> Module, got {norm!r}")
    return norm(width)


class EnsembleMLP(nn.Module):
    """``R`` independent MLPs evaluated at once: input ``(B, D)`` or ``(R, B, D)`` ->
    logits ``(R, B, out_features)``.

    Each hidden layer is ``Linear -> norm -> activation`` (Ioffe and Szegedy's placement,
    as :func:`normlab.training.mlp`), or ``Linear -> activation -> norm`` with
    ``norm_after_activation=True`` (the placement of article 002's Keras model).

    Parameters
    ----------
    seeds : sequence of int
        One seed per member; member ``r``'s weights are drawn from a generator seeded
        with ``seeds[r]``, so the same seed gives the same net in any ensemble.
    hidden : tuple of int
        Widths of the hidden layers.
    norm : None, ``"bn"`` or callable ``width -> Module``
        A per-channel normalization; it is built once with ``width = R * H`` channels
        and each member owns a block of ``H`` of them.
    activation : Module class (default ``nn.ReLU``).
    init : ``"torch"`` or ``"glorot"``
        ``"torch"``: ``nn.Linear``'s default, weights and biases ``U(-1/sqrt(fan_in),
        1/sqrt(fan_in))``. ``"glorot"``: Keras's ``Dense`` default, weights
        ``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``, biases zero.
    init_scale : float or sequence of float (one per member)
        Multiplies every initial weight matrix (not the biases): a bad initialization.
    scale_output : bool
        Whether ``init_scale`` also multiplies the output layer's weights (default). With
        ``False`` only the hidden layers, the ones that feed a normalization, are scaled.
    bias_before_norm : bool
        Whether a linear layer followed by a normalization keeps its bias (redundant
        with the norm's beta; ``normlab.training.mlp`` drops it too).
    norm_members : None or sequence of bool (one per member)
        Which members use ``norm`` (default: all). The others are the same MLP without
        normalization, so "with BN" and "without BN" can share one ensemble. When some
        members have no norm, every hidden linear layer keeps its bias (for the members with
        a norm before the activation that bias is redundant, not harmful: BN subtracts it).

    Weights are parameters ``w0, w1, ...`` of shape ``(R, fan_in, fan_out)`` and biases
    ``b0, b1, ...`` of shape ``(R, fan_out)`` (lists: :attr:`weights`, :attr:`biases`);
    :meth:`member` returns member ``r`` as an
    ordinary ``nn.Sequential``.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        in_features: int,
        hidden: tuple[int, ...] = (64, 64),
        out_features: int = 1,
        norm=None,
        activation=None,
        norm_after_activation: bool = False,
        init: str = "torch",
        init_scale=1.0,
        bias_before_norm: bool = False,
        norm_members=None,
        scale_output: bool = True,
    ):
        super().__init__()
        if init not in ("torch", "glorot"):
            raise ValueError(f"init must be 'torch' or 'glorot', got {init!r}")
        self.seeds = [int(s) for s in seeds]
        R = self.n_members = len(self.seeds)
        if R < 1:
            raise ValueError("an ensemble needs at least one seed")
        scales = np.broadcast_to(np.asarray(init_scale, dtype=np.float64), (R,))
        self.in_features, self.hidden, self.out_features = in_features, tuple(hidden), out_features
        self.norm_after_activation = norm_after_activation
        self.activation_cls = activation or nn.ReLU
        self.act = self.activation_cls()
        widths = [in_features, *self.hidden, out_features]
        n_layers = len(widths) - 1
        has_norm = norm is not None
        mask = np.ones(R, dtype=bool) if norm_members is None else np.asarray(norm_members, bool)
        if mask.shape != (R,):
            raise ValueError(
                f"norm_members needs one bool per member ({R}), got shape {mask.shape}"
            )
        if not has_norm:
            mask = np.zeros(R, dtype=bool)
        self.norm_members = mask
        mixed = has_norm and not mask.all()
        self.register_buffer("_norm_mask", torch.as_tensor(mask)[:, None, None], persistent=False)
        Ws = [torch.empty(R, widths[i], widths[i + 1]) for i in range(n_layers)]
        bs = [torch.zeros(R, widths[i + 1]) for i in range(n_layers)]
        for r, seed in enumerate(self.seeds):
            gen = torch.Generator().manual_seed(seed)
            for i in range(n_layers):
                fan_in, fan_out = widths[i], widths[i + 1]
                # torch.nn.Linear's weight is (out, in); draw it that way, then transpose,
                # so that the same generator state gives nn.Linear's layout.
                if init == "torch":
                    bound = 1.0 / math.sqrt(fan_in)
                    w = torch.empty(fan_out, fan_in).uniform_(-bound, bound, generator=gen)
                    b = torch.empty(fan_out).uniform_(-bound, bound, generator=gen)
                else:
                    a = math.sqrt(6.0 / (fan_in + fan_out))
                    w = torch.empty(fan_out, fan_in).uniform_(-a, a, generator=gen)
                    b = torch.zeros(fan_out)
                scaled = i < n_layers - 1 or scale_output
                Ws[i][r] = w.T * (float(scales[r]) if scaled else 1.0)
                bs[i][r] = b
        for i in range(n_layers):
            hidden_layer = i < n_layers - 1
            keep_bias = (
                not (hidden_layer and has_norm and not norm_after_activation)
                or bias_before_norm
                or mixed
            )
            self.register_parameter(f"w{i}", nn.Parameter(Ws[i]))
            self.register_parameter(f"b{i}", nn.Parameter(bs[i]) if keep_bias else None)
        self.norms = nn.ModuleList(
            [_make_norm(norm, R * h) for h in self.hidden] if has_norm else []
        )
        self.n_layers = n_layers
        self._record: dict | None = None

    @property
    def weights(self) -> list:
        """The linear weights ``(R, fan_in, fan_out)``, input layer first."""
        return [getattr(self, f"w{i}") for i in range(self.n_layers)]

    @property
    def biases(self) -> list:
        """The linear biases ``(R, fan_out)`` (``None`` where a norm follows), input first."""
        return [getattr(self, f"b{i}") for i in range(self.n_layers)]

    # -- forward ---------------------------------------------------------------------------
    def _apply_norm(self, i, h):
        R, B, H = h.shape
        z = h.transpose(0, 1).reshape(B, R * H)
        z = self.norms[i](z).reshape(B, R, H).transpose(0, 1)
        return z if self.norm_members.all() else torch.where(self._norm_mask, z, h)

    def forward(self, x):
        R = self.n_members
        h = x.expand(R, *x.shape) if x.dim() == 2 else x
        n_hidden = len(self.hidden)
        for i in range(n_hidden + 1):
            W, b = getattr(self, f"w{i}"), getattr(self, f"b{i}")
            h = torch.bmm(h, W) if b is None else torch.baddbmm(b.unsqueeze(1), h, W)
            if i == n_hidden:
                break
            if self.norms and not self.norm_after_activation:
                h = self._apply_norm(i, h)
            if self._record is not None:
                self._record[i] = h  # the input of hidden layer i's activation
            h = self.act(h)
            if self.norms and self.norm_after_activation:
                h = self._apply_norm(i, h)
        return h

    # -- members as ordinary modules ------------------------------------------------------
    def member(self, r: int):
        """Member ``r`` as an ``nn.Sequential`` (a copy; same layout as ``training.mlp``)."""
        layers = []
        n_hidden = len(self.hidden)
        for i in range(n_hidden + 1):
            W, b = self.weights[i], self.biases[i]
            lin = nn.Linear(W.shape[1], W.shape[2], bias=b is not None)
            with torch.no_grad():
                lin.weight.copy_(W[r].T)
                if b is not None:
                    lin.bias.copy_(b[r])
            layers.append(lin)
            if i == n_hidden:
                break
            norm = None
            if self.norms and self.norm_members[r]:
                big = self.norms[i]
                if isinstance(big, MemberNorm):
                    raise ValueError("member() cannot split a MemberNorm (its kinds and noise "
                                     "indices are per ensemble); build the member's own network")
                H = self.hidden[i]
                norm = _member_norm(big, r, H)
            if norm is not None and not self.norm_after_activation:
                layers.append(norm)
            layers.append(self.activation_cls())
            if norm is not None and self.norm_after_activation:
                layers.append(norm)
        return nn.Sequential(*layers)

    def linear_weight_names(self) -> list[str]:
        """Names (in ``named_parameters``) of the linear weights, input layer first."""
        return [f"w{i}" for i in range(self.n_layers)]



class MemberNorm(nn.Module):
    """A different per-channel normalization for each member of an :class:`EnsembleMLP`.

    ``kinds`` has one entry per member (its block of ``H`` channels):

    - ``"none"``: identity (give those members ``norm_members=False`` too, so that their
      linear layers keep a bias);
    - ``"bn"``: batch normalization, as ``nn.BatchNorm1d`` (biased batch variance, running
      mean and unbiased running variance with momentum 0.1);
    - ``"jitter"`` / ``"strong"``: BN plus Santurkar et al.'s noise, redrawn at every training
      step: per channel a mean ``U(-0.5, 0.5)`` and a standard deviation ``U(0.1, 0.3)``
      (``"jitter"``) or ``U(0.5, 1.5)`` (``"strong"``, the default of
      :class:`normlab.torch_modules.NoisyBatchNorm1d`), times i.i.d. normal noise per example;
    - ``"ramp"``: BN whose output distribution is moved *slowly and systematically*: at
      training step ``t`` channel ``c`` outputs ``y * exp(e_c f) + d_c f`` with
      ``f = min(t / ramp_steps, 1)``, ``d_c ~ U(-2, 2)``, ``e_c ~ U(-log 2, log 2)`` drawn once:
      every unit's mean walks up to two BN spreads away and its spread doubles or halves
      over ``ramp_steps`` steps;
    - ``"l1"`` / ``"linf"``: Santurkar et al.'s l_p "batch norm": subtract the batch mean but
      divide by the batch average of ``|z|`` (l1) or by ``max |z|`` (l_inf) of the *uncentred*
      inputs, so that neither the variance nor any other moment of the output is fixed.

    In eval mode the BN kinds use their running statistics, the l_p kinds a running mean
    and a running scale, no noise is added, and the ramp stays where training left it (it
    is a deterministic part of the network at step ``t``). Setting :attr:`inject` to ``False`` turns
    the noise and the ramp off in training mode too, so that a probe can separate the
    distribution change injected by construction from the one the parameters cause.
    ``weight``/``bias`` are the ``gamma``/``beta`` of every channel (``R * H``, as BN's).
    """

    KINDS = ("none", "bn", "jitter", "strong", "ramp", "l1", "linf")

    def __init__(self, kinds: Sequence[str], H: int, *, seed: int = 0, ramp_steps: int = 200,
                 eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        bad = [k for k in kinds if k not in self.KINDS]
        if bad:
            raise ValueError(f"unknown kinds {bad}; expected one of {self.KINDS}")
        self.kinds, self.H = list(kinds), int(H)
        self.num_features = C = len(self.kinds) * self.H
        self.eps, self.momentum, self.ramp_steps = float(eps), float(momentum), int(ramp_steps)
        code = torch.tensor([self.KINDS.index(k) for k in self.kinds]).repeat_interleave(self.H)
        self.register_buffer("code", code, persistent=False)
        self.weight = nn.Parameter(torch.ones(C))
        self.bias = nn.Parameter(torch.zeros(C))
        self.register_buffer("running_mean", torch.zeros(C))
        self.register_buffer("running_var", torch.ones(C))
        self.register_buffer("running_scale", torch.ones(C))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.generator = torch.Generator().manual_seed(int(seed))
        ramp_gen = torch.Generator().manual_seed(int(seed) + 1)
        u = torch.rand(2, C, generator=ramp_gen)
        self.register_buffer("ramp_shift", 4 * u[0] - 2, persistent=False)
        self.register_buffer("ramp_log_scale", (2 * u[1] - 1) * math.log(2.0), persistent=False)
        is_ = lambda *ks: torch.isin(code, torch.tensor([self.KINDS.index(k) for k in ks]))
        self.register_buffer("_lp1", is_("l1"), persistent=False)
        self.register_buffer("_lpinf", is_("linf"), persistent=False)
        self.register_buffer("_lp", is_("l1", "linf"), persistent=False)
        self.register_buffer("_ramp", is_("ramp"), persistent=False)
        noisy = is_("jitter", "strong")
        strong = is_("strong")[noisy]
        self.register_buffer("_noisy_idx", torch.nonzero(noisy)[:, 0], persistent=False)
        self.register_buffer("_noise_lo", torch.where(strong, 0.5, 0.1), persistent=False)
        self.register_buffer("_noise_hi", torch.where(strong, 1.5, 0.3), persistent=False)
        self.inject = True

    def forward(self, z):
        t = int(self.step)             # this step's ramp position (before the step counts)
        if self.training:
            mu = z.mean(0)
            var = (z * z).mean(0) - mu * mu
            scale = torch.sqrt(var + self.eps)
            if self._lp.any():
                a = z.abs()
                lp = torch.where(self._lp1, a.mean(0), a.amax(0)) + self.eps
                scale = torch.where(self._lp, lp, scale)
            with torch.no_grad():
                m, n = self.momentum, z.shape[0]
                self.running_mean.mul_(1 - m).add_(m * mu)
                self.running_var.mul_(1 - m).add_(m * var * n / max(n - 1, 1))
                self.running_scale.mul_(1 - m).add_(m * scale)
                self.step.add_(1)
        else:
            mu = self.running_mean
            scale = torch.where(self._lp, self.running_scale,
                                torch.sqrt(self.running_var + self.eps))
        y = self.weight * (z - mu) / scale + self.bias
        if not self.inject:
            return y
        if self.training and len(self._noisy_idx):
            k = len(self._noisy_idx)
            with torch.no_grad():
                u = torch.rand(2, k, generator=self.generator)
                noise = (2 * u[0] - 1) * 0.5 + (
                    self._noise_lo + (self._noise_hi - self._noise_lo) * u[1]
                ) * torch.randn(y.shape[0], k, generator=self.generator)
            y = y.index_add(1, self._noisy_idx, noise)
        if self._ramp.any():
            # the ramp is part of the network at step t: applied in eval mode too
            f = min(t / self.ramp_steps, 1.0)
            moved = y * torch.exp(self.ramp_log_scale * f) + self.ramp_shift * f
            y = torch.where(self._ramp, moved, y)
        return y


class injection_off:
    """Context: every :class:`MemberNorm` of ``model`` adds no noise and no ramp inside."""

    def __init__(self, model):
        self.mods = [m for m in model.modules() if isinstance(m, MemberNorm)]

    def __enter__(self):
        self.saved = [m.inject for m in self.mods]
        for m in self.mods:
            m.inject = False
        return self

    def __exit__(self, *exc):
        for m, v in zip(self.mods, self.saved):
            m.inject = v
        return False


def member_split_tensors(X, y, random_states: Sequence[int], test_size: float = 0.2):
    """One ``sklearn.model_selection.train_test_split`` per member, stacked for an ensemble.

    Returns ``(X_train (R, n, D), y_train (R, n), X_test (R, m, D), y_test (R, m))`` torch
    tensors (float32 / int64), member ``r`` split with ``random_state=random_states[r]``,
    as a Keras user splits article 002's data.
    """
    from sklearn.model_selection import train_test_split

    parts = [train_test_split(X, y, test_size=test_size, random_state=int(rs))
             for rs in random_states]
    Xtr, Xte, ytr, yte = (np.stack([p[i] for p in parts]) for i in range(4))
    return (torch.as_tensor(Xtr, dtype=torch.float32), torch.as_tensor(ytr, dtype=torch.int64),
            torch.as_tensor(Xte, dtype=torch.float32), torch.as_tensor(yte, dtype=torch.int64))


def _member_norm(big, r: int, H: int):
    """Copy of block ``r`` (channels ``r*H .. r*H+H``) of a per-channel norm module."""
    import copy


    small = copy.deepcopy(big)
    sl = slice(r * H, (r + 1) * H)
    with torch.no_grad():
        for name, t in list(big.named_parameters(recurse=False)) + list(
            big.named_buffers(recurse=False)
        ):
            if t is not None and t.dim() >= 1 and t.shape[0] == _width(big):
                new = t[sl].clone()
                if isinstance(t, torch.nn.Parameter):
                    setattr(small, name, torch.nn.Parameter(new))
                else:
                    setattr(small, name, new)
    if hasattr(small, "num_features"):
        small.num_features = H
    return small


def _width(module) -> int:
    return int(getattr(module, "num_features"))


def _member_correct(logits, y):
    if logits.shape[-1] == 1:
        return ((logits[..., 0] > 0).long() == y).sum(1)
    return (logits.argmax(-1) == y).sum(1)


def evaluate_ensemble(model, X, y):
    """Per-member mean loss and accuracy in eval mode: two numpy arrays ``(R,)``.

    ``X (B, D)`` and ``y (B,)`` are shared by all members; ``X (R, B, D)`` and ``y (R, B)``
    give every member its own examples (see :func:`member_split_tensors`).
    """

    was = model.training
    model.eval()
    with torch.no_grad():
        logits = model(X)
        loss = member_losses(logits, y).numpy().astype(np.float64)
        acc = _member_correct(logits, y).numpy() / X.shape[-2]
    model.train(was)
    return loss, acc


def _batch_norms(model) -> list:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def recalibrate_batchnorm(model, X) -> None:
    """Set every BN layer's running statistics to the statistics of ``X`` under the current
    weights (one full-batch forward pass in training mode, momentum ``None``).

    After it, eval mode normalizes with the training set's own statistics, free of the lag
    of a small momentum (Keras's 0.99: after one epoch of 25 steps the running mean is only
    ``1 - 0.99**25``, about 22 %, of the way from its initial 0). One pass suffices: each
    layer's input is then normalized with the full-batch statistics of the layers below it.
    """
    bns = _batch_norms(model)
    saved = [(m.momentum, m.training) for m in bns]
    was = model.training
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        with torch.no_grad():
            model(X)
    finally:
        for m, (mom, _) in zip(bns, saved):
            m.momentum = mom
        model.train(was)


@dataclass
class EnsembleHistory:
    """Records of an ensemble run; every array has one column per member.

    ``step_loss`` (steps, R): the training mini-batch loss at every step (before the
    update, as ``training.History.step_loss``); ``train_loss`` ... ``test_acc`` (epochs, R):
    eval-mode loss and accuracy after every epoch.
    """

    step_loss: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)

    def as_arrays(self) -> dict:
        return {k: np.asarray(v, dtype=np.float64) for k, v in self.__dict__.items()}


def _per_member(value, R: int, name: str) -> np.ndarray:
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        v = np.full(R, float(v))
    if v.shape != (R,):
        raise ValueError(
            f"{name} must be a scalar or have one value per member ({R}), got shape {v.shape}"
        )
    return v


def train_ensemble(
    model,
    data,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    lr=1e-3,
    optimizer: str = "adam",
    seeds: Sequence[int] | None = None,
    on_step: Callable | None = None,
    eval_every_epoch: bool = True,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    lr_multipliers: dict | None = None,
    eval_stats: str = "running",
) -> EnsembleHistory:
    """Train every member of an :class:`EnsembleMLP` as :func:`normlab.training.train` would.

    ``data = (X_train, y_train, X_test, y_test)`` torch tensors shared by all members.
    ``seeds`` (default: the ensemble's seeds) seed each member's mini-batch order exactly as
    ``training.train(..., seed=seeds[r])`` does. ``lr`` is a scalar or one learning rate per
    member. ``optimizer``: ``"sgd"`` (plain SGD) or ``"adam"`` (torch's Adam, written out so
    that each member can have its own learning rate). ``on_step(step, model, losses)`` is
    called after every update with the members' mini-batch losses (a numpy array). A member
    whose loss became NaN or infinite keeps training (its numbers stay non-finite); the
    others are unaffected.

    ``data`` tensors of shape ``(R, n, D)`` / ``(R, n)`` give every member its own training
    and test set (all of the same size; :func:`member_split_tensors`). ``lr_multipliers``
    maps a parameter name to one factor per member: that member's learning rate for that
    parameter is ``lr[r] * factor[r]`` (e.g. ``a**2`` for the weights that feed a BN layer,
    to undo an initial scale ``a``). ``eval_stats``: ``"running"`` evaluates after every
    epoch in eval mode with the running statistics, ``"recalibrated"`` with statistics
    recomputed on the whole training set (:func:`recalibrate_batchnorm`; the running
    statistics the training run keeps are restored afterwards).
    """

    X_train, y_train, X_test, y_test = data
    R = model.n_members
    seeds = list(model.seeds if seeds is None else seeds)
    if len(seeds) != R:
        raise ValueError(f"need one seed per member ({R}), got {len(seeds)}")
    lrs = _per_member(lr, R, "lr")
    if eval_stats not in ("running", "recalibrated"):
        raise ValueError(f"eval_stats must be 'running' or 'recalibrated', got {eval_stats!r}")
    per_member_data = X_train.dim() == 3
    if per_member_data and (X_train.shape[0] != R or y_train.shape[:1] != (R,)):
        raise ValueError(
            f"per-member data needs X_train (R={R}, n, D) and y_train (R, n), got "
            f"{tuple(X_train.shape)} and {tuple(y_train.shape)}"
        )
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    for p in params:
        if p.numel() % R:
            raise ValueError("every parameter must split into one block per member")
    mult = dict(lr_multipliers or {})
    unknown = set(mult) - {k for k, _ in named}
    if unknown:
        raise ValueError(f"lr_multipliers names unknown parameters {sorted(unknown)}; "
                         f"parameters are {[k for k, _ in named]}")
    # One learning-rate tensor per parameter, laid out like it (member r's block gets lr[r]),
    # so that each update is a handful of foreach calls whatever the number of members.
    lr_full = []
    for k, p in named:
        f = _per_member(mult.get(k, 1.0), R, f"lr_multipliers[{k!r}]")
        lr_t = torch.as_tensor(lrs * f, dtype=torch.float32)
        lr_full.append(lr_t.repeat_interleave(p.numel() // R).view_as(p))
    if optimizer == "adam":
        ms = [torch.zeros_like(p) for p in params]
        vs = [torch.zeros_like(p) for p in params]
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    hist = EnsembleHistory()
    n = X_train.shape[-2]
    rows = torch.arange(R)[:, None]
    has_norm = len(getattr(model, "norms", [])) > 0
    step = 0
    for _ in range(epochs):
        model.train()
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens])  # (R, n)
        for i in range(0, n, batch_size):
            idx = perms[:, i : i + batch_size]
            if idx.shape[1] < 2 and has_norm:
                continue  # as training.train: a batch of one cannot be batch-normalized
            if per_member_data:
                xb, yb = X_train[rows, idx], y_train[rows, idx]
            else:
                xb, yb = X_train[idx], y_train[idx]
            logits = model(xb)
            losses = member_losses(logits, yb)
            for p in params:
                p.grad = None
            losses.sum().backward()
            with torch.no_grad():
                step += 1
                grads = [p.grad for p in params]
                if optimizer == "sgd":
                    torch._foreach_sub_(params, torch._foreach_mul(grads, lr_full))
                else:  # torch.optim.Adam's update, with a per-member learning rate
                    torch._foreach_mul_(ms, betas[0])
                    torch._foreach_add_(ms, grads, alpha=1 - betas[0])
                    torch._foreach_mul_(vs, betas[1])
                    torch._foreach_addcmul_(vs, grads, grads, value=1 - betas[1])
                    bc1 = 1 - betas[0] ** step
                    bc2 = 1 - betas[1] ** step
                    denom = torch._foreach_sqrt(vs)
                    torch._foreach_div_(denom, math.sqrt(bc2))
                    torch._foreach_add_(denom, eps)
                    upd = torch._foreach_div(ms, denom)
                    torch._foreach_mul_(upd, lr_full)
                    torch._foreach_div_(upd, bc1)
                    torch._foreach_sub_(params, upd)
            lv = losses.detach().numpy().astype(np.float64)
            hist.step_loss.append(lv)
            if on_step is not None:
                on_step(step, model, lv)
        if eval_every_epoch:
            if eval_stats == "recalibrated":
                saved = {k: v.clone() for k, v in model.named_buffers()}
                recalibrate_batchnorm(model, X_train)
            tl, ta = evaluate_ensemble(model, X_train, y_train)
            vl, va = evaluate_ensemble(model, X_test, y_test)
            if eval_stats == "recalibrated":
                with torch.no_grad():
                    for k, v in model.named_buffers():
                        v.copy_(saved[k])
            hist.train_loss.append(tl)
            hist.train_acc.append(ta)
            hist.test_loss.append(vl)
            hist.test_acc.append(va)
    return hist


# ---------------------------------------------------------------------------------------------
# One run, all measurements
# ---------------------------------------------------------------------------------------------


def preceding_parameters(model, layer: int) -> list[str]:
    """Names of the parameters of an :class:`EnsembleMLP` that come before linear ``layer``:
    the linear weights and biases of layers ``0 .. layer-1`` and their norms' parameters."""
    names = []
    for n, _ in model.named_parameters():
        if n[0] in "wb" and n[1:].isdigit() and int(n[1:]) < layer:
            names.append(n)
        elif n.startswith("norms.") and int(n.split(".")[1]) < layer:
            names.append(n)
    return names


@dataclass
class Tracked:
    """What :func:`track_training` records; arrays have one column per member (last axis).

    ``probe_steps`` (P,), ``probe_mean`` / ``probe_std`` (P, R, H): statistics of the probed
    layer's inputs; ``measure_steps`` (M,); ``grad_diff``, ``grad_rel_diff``, ``grad_cos``
    (M, R): :func:`gradient_change` of linear layer ``layer``; ``loss_range``, ``beta``,
    ``grad_norm`` (M, R) and ``landscape_loss`` (M, S, R): :func:`landscape_along_gradient`;
    ``history``: the :class:`EnsembleHistory` arrays. ``probe_mean_clean`` /
    ``probe_std_clean``: the same probes with :func:`injection_off` (for a
    :class:`MemberNorm` with noise or a ramp: the part of the change the parameters cause;
    otherwise equal to ``probe_mean`` / ``probe_std``).
    """

    probe_steps: np.ndarray
    probe_mean: np.ndarray
    probe_std: np.ndarray
    probe_mean_clean: np.ndarray
    probe_std_clean: np.ndarray
    measure_steps: np.ndarray
    grad_diff: np.ndarray
    grad_rel_diff: np.ndarray
    grad_cos: np.ndarray
    loss_range: np.ndarray
    beta: np.ndarray
    grad_norm: np.ndarray
    landscape_loss: np.ndarray
    history: dict


def track_training(
    model,
    data,
    *,
    layer: int,
    lr: float,
    epochs: int,
    batch_size: int = 32,
    probe_size: int = 256,
    probe_every: int = 5,
    measure_every: int = 10,
    step_sizes: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
) -> Tracked:
    """Train an :class:`EnsembleMLP` with plain SGD and measure it along the way.

    Every ``probe_every`` steps: :func:`probe_stats` of hidden layer ``layer``'s activation
    input on the first ``probe_size`` training examples (a fixed probe batch). Every
    ``measure_every`` steps, on a fresh mini-batch of ``batch_size`` training examples drawn
    with a generator seeded by the step number (the same batch for every member and every
    model): :func:`gradient_change` of linear layer ``layer``'s weights when all layers before
    it take an SGD step of size ``lr``, and :func:`landscape_along_gradient` at step sizes
    ``lr * step_sizes``. Step 0 (before training) is included in both. The measurements
    change nothing in the run (see :func:`functional_loss`).
    """
    X_train, y_train = data[0], data[1]
    R = model.n_members
    probe = X_train[:probe_size]
    pre = preceding_parameters(model, layer)
    etas = [lr * float(s) for s in step_sizes]
    rec: dict = {k: [] for k in ("ps", "pm", "pstd", "pmc", "pstdc", "ms", "gc", "ls")}

    def measure(step, m):
        if step % probe_every == 0:
            mean, std = probe_stats(m, probe, layer)
            rec["ps"].append(step)
            rec["pm"].append(mean)
            rec["pstd"].append(std)
            with injection_off(m):
                mean, std = probe_stats(m, probe, layer)
            rec["pmc"].append(mean)
            rec["pstdc"].append(std)
        if step % measure_every == 0:
            gen = torch.Generator().manual_seed(step)
            idx = torch.randperm(len(X_train), generator=gen)[:batch_size]
            loss_fn, params = functional_loss(m, X_train[idx], y_train[idx])
            rec["ms"].append(step)
            rec["gc"].append(gradient_change(loss_fn, params, f"w{layer}", pre, lr, n_members=R))
            rec["ls"].append(landscape_along_gradient(loss_fn, params, etas, n_members=R))

    measure(0, model)
    hist = train_ensemble(
        model, data, epochs=epochs, batch_size=batch_size, lr=lr, optimizer="sgd",
        on_step=lambda step, m, losses: measure(step, m),
    )
    gc, ls = rec["gc"], rec["ls"]
    return Tracked(
        probe_steps=np.asarray(rec["ps"]),
        probe_mean=np.asarray(rec["pm"]),
        probe_std=np.asarray(rec["pstd"]),
        probe_mean_clean=np.asarray(rec["pmc"]),
        probe_std_clean=np.asarray(rec["pstdc"]),
        measure_steps=np.asarray(rec["ms"]),
        grad_diff=np.asarray([g["diff"] for g in gc]),
        grad_rel_diff=np.asarray([g["rel_diff"] for g in gc]),
        grad_cos=np.asarray([g["cos"] for g in gc]),
        loss_range=np.asarray([d["loss_range"] for d in ls]),
        beta=np.asarray([d["beta"] for d in ls]),
        grad_norm=np.asarray([d["grad_norm"] for d in ls]),
        landscape_loss=np.asarray([d["loss"] for d in ls]),
        history=hist.as_arrays(),
    )


# ---------------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------------


def largest_stable(
    values: Sequence[float], final_losses: np.ndarray, threshold: float
) -> np.ndarray:
    """For a sweep, the largest value (e.g. learning rate) whose run ended below ``threshold``.

    ``final_losses`` is (runs, len(values)): one row per seed. Returns ``(runs,)`` with, for
    each row, the largest ``values[i]`` whose loss is finite and ``< threshold``, or NaN if
    none is.
    """
    v = np.asarray(values, dtype=np.float64)
    L = np.asarray(final_losses, dtype=np.float64)
    if L.ndim != 2 or L.shape[1] != len(v):
        raise ValueError(f"final_losses must be (runs, {len(v)}), got {L.shape}")
    ok = np.isfinite(L) & (L < threshold)
    out = np.full(L.shape[0], np.nan)
    for r in range(L.shape[0]):
        if ok[r].any():
            out[r] = v[ok[r]].max()
    return out
