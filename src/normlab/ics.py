"""Measurements of internal covariate shift and of the loss landscape (Santurkar et al. 2018).

Santurkar, Tsipras, Ilyas and Madry, "How Does Batch Normalization Help Optimization?" (2018)
measure what batch normalization changes during training. The measurements here are the
references that chapter 5 of the course and its graded exercise use. All of them but
:func:`drift_summary` work on a *functional* loss ``loss_fn(params) -> (R,)``, the losses of
``R`` independent members for a dict of parameter tensors (see :func:`functional_loss`), so
they apply to one ordinary ``nn.Module`` (``R = 1``) and to an ensemble of ``R`` nets stored
as stacked weight tensors (any module with an ``n_members`` attribute whose output is
``(R, B, out)`` logits, such as the book's ``EnsembleMLP``) alike:

- :func:`gradient_change` -- internal covariate shift as a change of gradient: the gradient
  ``G`` of a layer's weights before and ``G'`` after the layers *before it* take one gradient
  step, reported as ``||G - G'||`` and ``cos(G, G')``;
- :func:`landscape_along_gradient` -- the loss and the gradient at ``theta - eta * g`` for
  several step sizes ``eta``: the range of the loss (how Lipschitz the loss is along the way)
  and the change of the gradient per unit distance (the "effective beta-smoothness");
- :func:`probe_stats` -- per-unit mean and standard deviation of the input to a hidden layer's
  activation on a fixed probe batch: the "distribution of a layer's inputs" whose drift
  internal covariate shift is about; :func:`drift_summary` reduces a series of them to how
  far that distribution moved;
- :func:`layer_gradient_norms` -- the norm of the loss gradient with respect to every linear
  layer's weights (vanishing and exploding gradients).

Every measurement leaves the model and every random number generator as it found them, so it
can run in the middle of a training run without disturbing it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

__all__ = [
    "member_losses",
    "functional_loss",
    "gradient_change",
    "landscape_along_gradient",
    "probe_stats",
    "layer_gradient_norms",
    "drift_summary",
]


def member_losses(logits, y, reduction: str = "mean"):
    """Per-member loss ``(R,)`` of ensemble logits ``(R, B, out)`` against targets ``y (B,)``.

    One output unit: binary cross-entropy with logits (article 002's sigmoid output);
    several: cross-entropy. Same losses as :func:`normlab.training.train`.
    """
    import torch.nn.functional as F

    R, B, out = logits.shape
    if out == 1:
        l = F.binary_cross_entropy_with_logits(
            logits[..., 0], y.float().expand(R, B), reduction="none"
        )
    else:
        l = F.cross_entropy(
            logits.reshape(R * B, out), y.repeat(R), reduction="none"
        ).reshape(R, B)
    return l.mean(1) if reduction == "mean" else l.sum(1)


def _module_generators(model) -> list:
    """The private ``torch.Generator`` of every submodule that has one (a noisy BN's)."""
    return [
        m.generator
        for m in model.modules()
        if isinstance(getattr(m, "generator", None), torch.Generator)
    ]


class _FrozenRandomness:
    """Context: every RNG a forward pass may use starts from a fixed state and is restored.

    Inside, torch's global RNG is seeded with ``seed`` (if given) and every module-owned
    generator is set to the state it had when this object was made; on exit all of them
    are put back where they were, so a measurement never perturbs the training run.
    """

    def __init__(self, model, seed: int | None):
        self.gens = _module_generators(model)
        self.states = [g.get_state() for g in self.gens]
        self.seed = seed

    def __enter__(self):
        self.global_state = torch.get_rng_state()
        if self.seed is not None:
            torch.default_generator.manual_seed(self.seed)
        self.saved = [g.get_state() for g in self.gens]
        for g, st in zip(self.gens, self.states):
            g.set_state(st)
        return self

    def __exit__(self, *exc):
        for g, st in zip(self.gens, self.saved):
            g.set_state(st)
        torch.set_rng_state(self.global_state)
        return False


def functional_loss(model, x, y, criterion: Callable | None = None, noise_seed: int = 0):
    """``(loss_fn, params)`` for measuring ``model`` on the batch ``(x, y)`` in training mode.

    ``loss_fn(params) -> (R,)`` evaluates the model with the parameter tensors in ``params``
    (a dict name -> tensor, as ``model.named_parameters()``) and returns one loss per member:
    ``R`` members for an ensemble (a module with ``n_members``: :func:`member_losses`), ``R = 1`` for an ordinary
    module (``criterion(output, y)``, default: ``training``'s binary/multiclass loss, mean).
    The model itself is never changed: buffers (BN running statistics) are cloned at every
    call, and every random number generator (torch's, seeded with ``noise_seed``, and the
    private generator of a noisy BN, reset to its state at the time ``functional_loss`` was
    called) restarts from the same state inside every call and is restored afterwards. So a
    noisy layer draws the *same* noise at every evaluation -- two evaluations differ only
    through the parameters -- and the training run's random streams are left untouched.
    """
    from torch.func import functional_call

    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    ensemble = hasattr(model, "n_members")
    frozen = _FrozenRandomness(model, noise_seed)

    def loss_fn(p):
        with frozen:
            bufs = {k: v.clone() for k, v in buffers.items()}
            out = functional_call(model, {**p, **bufs}, (x,))
        if ensemble:
            return member_losses(out, y)
        if criterion is not None:
            return criterion(out, y).reshape(1)
        from .training import loss_and_correct

        loss_sum, _ = loss_and_correct(out, y)
        return (loss_sum / len(x)).reshape(1)

    return loss_fn, params


def _grads(loss_fn, params: dict, names: Sequence[str]):
    p = {k: (v.detach().requires_grad_(k in names)) for k, v in params.items()}
    losses = loss_fn(p)
    gs = torch.autograd.grad(losses.sum(), [p[k] for k in names], allow_unused=True)
    gs = [torch.zeros_like(p[k]) if g is None else g for k, g in zip(names, gs)]
    return losses.detach(), dict(zip(names, gs))


def _split(t, R):
    return t.reshape(R, -1).double()


def gradient_change(
    loss_fn, params: dict, target: str, preceding: Sequence[str], lr: float, n_members: int = 1
):
    """Internal covariate shift as a change of gradient (Santurkar et al. 2018, section 2.2).

    ``G`` is the gradient of the loss with respect to ``params[target]``; ``G'`` is the same
    gradient after every parameter named in ``preceding`` (the layers before ``target``) has
    taken one SGD step of size ``lr`` along its own gradient, all other parameters unchanged::

        G  = grad_{W_k} L(W_1, ..., W_{k-1}, W_k, ...)
        G' = grad_{W_k} L(W_1 - lr g_1, ..., W_{k-1} - lr g_{k-1}, W_k, ...)

    Returns a dict of numpy arrays ``(n_members,)``: ``diff = ||G - G'||``, ``rel_diff =
    ||G - G'|| / ||G||``, ``cos = cos(G, G')`` and ``norm = ||G||`` (norms per member, over
    the member's block of ``params[target]``).
    """

    R = n_members
    names = list(preceding) + [target]
    _, g = _grads(loss_fn, params, names)
    moved = dict(params)
    with torch.no_grad():
        for k in preceding:
            moved[k] = params[k].detach() - lr * g[k]
    _, g2 = _grads(loss_fn, moved, [target])
    G, G2 = _split(g[target], R), _split(g2[target], R)
    diff = (G - G2).norm(dim=1)
    nG, nG2 = G.norm(dim=1), G2.norm(dim=1)
    cos = (G * G2).sum(1) / (nG * nG2).clamp_min(1e-300)
    return {
        "diff": diff.numpy(),
        "rel_diff": (diff / nG.clamp_min(1e-300)).numpy(),
        "cos": cos.numpy(),
        "norm": nG.numpy(),
    }


def landscape_along_gradient(
    loss_fn,
    params: dict,
    step_sizes: Sequence[float],
    n_members: int = 1,
    names: Sequence[str] | None = None,
):
    """Loss and gradient along the gradient direction (Santurkar et al. 2018, section 3.1).

    With ``g = grad L(theta)`` (over the parameters in ``names``, default all), evaluates
    ``L(theta - eta g)`` and ``grad L(theta - eta g)`` for every ``eta`` in ``step_sizes``.

    Returns a dict of numpy arrays: ``loss`` (S, R) the losses at the S step sizes,
    ``loss0`` (R,) the loss at ``theta``, ``grad_norm`` (R,) ``||g||``, ``grad_change``
    (S, R) ``||grad L(theta - eta g) - g||``, ``loss_range`` (R,) max - min of the loss over
    the step sizes, and ``beta`` (R,) the "effective beta-smoothness"
    ``max_eta ||grad L(theta - eta g) - g|| / (eta ||g||)`` -- the largest change of gradient
    per unit of distance moved.
    """

    R = n_members
    names = list(params) if names is None else list(names)
    loss0, g = _grads(loss_fn, params, names)
    gflat = torch.cat([_split(g[k], R) for k in names], dim=1)
    gnorm = gflat.norm(dim=1)
    losses, changes = [], []
    for eta in step_sizes:
        moved = dict(params)
        with torch.no_grad():
            for k in names:
                moved[k] = params[k].detach() - eta * g[k]
        l, g2 = _grads(loss_fn, moved, names)
        g2flat = torch.cat([_split(g2[k], R) for k in names], dim=1)
        losses.append(l.double().numpy())
        changes.append((g2flat - gflat).norm(dim=1).numpy())
    loss = np.asarray(losses)
    change = np.asarray(changes)
    etas = np.asarray(step_sizes, dtype=np.float64)[:, None]
    gn = gnorm.numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.max(change / (etas * gn[None, :]), axis=0)
    return {
        "loss": loss,
        "loss0": loss0.double().numpy(),
        "grad_norm": gn,
        "grad_change": change,
        "loss_range": loss.max(0) - loss.min(0),
        "beta": beta,
    }


def probe_stats(model, x, layer: int, noise_seed: int | None = None):
    """Per-unit mean and standard deviation of the input to hidden layer ``layer``'s activation.

    ``model`` is an ensemble that records the input of hidden layer ``i``'s activation in
    ``model._record[i]`` while ``model._record`` is a dict (the book's ``EnsembleMLP`` does);
    ``x`` a fixed probe batch. The model runs in training mode (what the next layer sees
    during training: batch statistics, and the noise of a noisy BN) without changing anything: running statistics and every random
    generator are restored afterwards (a noisy BN draws the noise distribution that its next
    training step will draw). ``noise_seed`` seeds torch's global RNG inside the call.
    Returns two numpy arrays ``(R, H)``: mean and (biased) std over the probe batch.
    """
    saved = {k: v.detach().clone() for k, v in model.named_buffers()}
    was = model.training
    model.train()
    model._record = {}
    try:
        with torch.no_grad(), _FrozenRandomness(model, noise_seed):
            model(x)
        h = model._record[layer].double()
    finally:
        model._record = None
        model.train(was)
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(saved[k])
    return h.mean(1).numpy(), h.std(1, unbiased=False).numpy()


def layer_gradient_norms(model, x, y, criterion: Callable | None = None) -> np.ndarray:
    """``||dL/dW_l||`` (Frobenius) for every linear layer ``l``, input layer first.

    For an ensemble (``n_members``, ``linear_weight_names()``) returns ``(L, R)`` (one column
    per member, each member's own loss); for an ordinary module, ``(L,)`` over its ``nn.Linear`` layers. Training mode,
    model unchanged (a functional evaluation, see :func:`functional_loss`).
    """
    loss_fn, params = functional_loss(model, x, y, criterion)
    if hasattr(model, "n_members"):
        names = model.linear_weight_names()
        R = model.n_members
    else:
        names = [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        R = 1
    _, g = _grads(loss_fn, params, names)
    out = np.stack([_split(g[k], R).norm(dim=1).numpy() for k in names])
    return out if R > 1 or hasattr(model, "n_members") else out[:, 0]


def drift_summary(probe_mean: np.ndarray, probe_std: np.ndarray) -> dict:
    """How much a layer's input distribution moved, from :func:`track_training`'s probes.

    ``probe_mean``, ``probe_std``: (P, R, H) per-unit mean and std at P probe times.
    Returns arrays ``(R,)``, each averaged over the H units:
    ``std_first`` / ``std_last`` the spread of the inputs at the first / last probe;
    ``drift`` ``mean_j |mu_last(j) - mu_first(j)|``, how far the means moved in total;
    ``jump`` ``mean_{t,j} |mu_{t+1}(j) - mu_t(j)|``, how far they move between two probes;
    ``rel_jump`` ``jump`` divided by the average spread ``mean_{t,j} sigma_t(j)``: the jump
    in units of the layer's own scale.
    """
    m = np.asarray(probe_mean, dtype=np.float64)
    s = np.asarray(probe_std, dtype=np.float64)
    if m.ndim != 3 or m.shape != s.shape or m.shape[0] < 2:
        raise ValueError(
            f"need two (P >= 2, R, H) arrays of the same shape, got {m.shape} and {s.shape}"
        )
    jump = np.abs(np.diff(m, axis=0)).mean(axis=(0, 2))
    return {
        "std_first": s[0].mean(1),
        "std_last": s[-1].mean(1),
        "drift": np.abs(m[-1] - m[0]).mean(1),
        "jump": jump,
        "rel_jump": jump / s.mean(axis=(0, 2)),
    }
