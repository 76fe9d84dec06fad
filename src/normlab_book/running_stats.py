"""Running statistics of batch norm: how they converge, and how to re-estimate them.

Chapter 4 ("Test-time behaviour") uses these functions.

- ``running_mean_trace``: feed a stream of batches from a fixed Gaussian to normlab
  ``BatchNorm1d`` layers with several momenta (and ``None``, the cumulative average) and record
  how far ``running_mean`` and ``running_var`` are from the true mean and variance after every
  step.
- ``ema_noise_floor``: the stationary standard deviation of an exponential moving average of
  batch means, ``sigma / sqrt(B) * sqrt(m / (2 - m))``, the error the running mean keeps
  forever with a constant momentum m; ``running_mean_rms_error``: the expected error at every
  step, start-up transient included.
- ``bn_modules``, ``set_bn_momentum``, ``recalibrate_bn``: torch helpers. Recalibration resets
  every BN layer's running statistics and re-estimates them with ``momentum=None`` (an equal
  weight for every batch) in one pass over data, without touching any weight; the same recipe
  as ``torch.optim.swa_utils.update_bn``.
- ``random_feature_shift``: a seeded per-feature rescaling and offset of the inputs, the
  deployment shift that recalibration (AdaBN) is tested on: unlike a constant offset, a
  rescaling changes the direction of every first-layer pre-activation, so BN's statistics
  cannot undo it exactly.
"""

from __future__ import annotations

import numpy as np

from normlab.layers import BatchNorm1d

__all__ = [
    "running_mean_trace",
    "ema_noise_floor",
    "running_mean_rms_error",
    "bn_modules",
    "set_bn_momentum",
    "recalibrate_bn",
    "random_feature_shift",
]


def running_mean_trace(
    momenta,
    n_steps: int = 200,
    batch_size: int = 32,
    seeds=(0, 1, 2),
    true_mean: float = 3.0,
    true_std: float = 2.0,
    n_features: int = 16,
) -> dict:
    """Errors of the running statistics of ``BatchNorm1d`` layers, step by step.

    For each seed one stream of ``n_steps`` batches x ~ N(true_mean, true_std**2) of shape
    (batch_size, n_features) is drawn; every momentum in ``momenta`` (floats, or None for the
    cumulative average) gets its own fresh layer fed the SAME stream. Also recorded, for
    comparison, is the cumulative average of the BIASED batch variances.

    Returns a dict with
      "mean_error": {momentum: (len(seeds), n_steps)} RMS over features of running_mean - mu;
      "var_ratio":  {momentum: (len(seeds), n_steps)} mean over features of running_var / var;
      "biased_var_ratio": (len(seeds), n_steps) the biased cumulative average / var;
      "num_batches_tracked": the final counter (equal to n_steps).
    """
    momenta = list(momenta)
    mean_err = {m: np.empty((len(seeds), n_steps)) for m in momenta}
    var_ratio = {m: np.empty((len(seeds), n_steps)) for m in momenta}
    biased = np.empty((len(seeds), n_steps))
    tracked = None
    for s, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        layers = {m: BatchNorm1d(n_features, momentum=m) for m in momenta}
        biased_sum = np.zeros(n_features)
        for t in range(n_steps):
            x = true_mean + true_std * rng.standard_normal((batch_size, n_features))
            biased_sum += x.var(axis=0)
            biased[s, t] = np.mean(biased_sum / (t + 1)) / true_std**2
            for m, layer in layers.items():
                layer(x)
                mean_err[m][s, t] = np.sqrt(np.mean((layer.running_mean - true_mean) ** 2))
                var_ratio[m][s, t] = np.mean(layer.running_var) / true_std**2
        tracked = int(next(iter(layers.values())).num_batches_tracked)
    return {
        "mean_error": mean_err,
        "var_ratio": var_ratio,
        "biased_var_ratio": biased,
        "num_batches_tracked": tracked,
    }


def ema_noise_floor(momentum: float, std: float, batch_size: int) -> float:
    """Stationary std of ``r <- (1 - m) r + m * mean(batch)`` for i.i.d. batches.

    The batch mean has variance std**2 / B; the stationary variance of the moving average is
    m**2 / (1 - (1 - m)**2) = m / (2 - m) times that.
    """
    m = float(momentum)
    if not 0.0 < m <= 1.0:
        raise ValueError(f"momentum must be in (0, 1], got {momentum}")
    return float(std / np.sqrt(batch_size) * np.sqrt(m / (2.0 - m)))


def running_mean_rms_error(momentum, n_steps: int, true_mean: float, true_std: float,
                           batch_size: int, init: float = 0.0) -> np.ndarray:
    """Expected RMS error of ``running_mean`` after steps 1..n_steps, shape (n_steps,).

    For i.i.d. batches of ``batch_size`` from a distribution with mean ``true_mean`` and
    standard deviation ``true_std``, starting from ``running_mean = init``:

    - momentum m: ``r_t = (1-m)^t init + sum_k m (1-m)^k mu_{t-k}``, so the bias is
      ``(init - true_mean) (1-m)^t`` and the variance
      ``true_std**2 / B * m**2 (1 - (1-m)^(2t)) / (1 - (1-m)^2)``; the RMS error is
      ``sqrt(bias**2 + variance)``, tending to ``ema_noise_floor``.
    - momentum None (cumulative average): no bias, ``true_std / sqrt(B t)``.
    """
    t = np.arange(1, n_steps + 1, dtype=np.float64)
    sem2 = true_std**2 / batch_size
    if momentum is None:
        return np.sqrt(sem2 / t)
    m = float(momentum)
    if not 0.0 < m <= 1.0:
        raise ValueError(f"momentum must be None or in (0, 1], got {momentum}")
    keep = (1.0 - m) ** t
    bias = (init - true_mean) * keep
    var = sem2 * m * m * (1.0 - keep**2) / (1.0 - (1.0 - m) ** 2)
    return np.sqrt(bias**2 + var)


def bn_modules(model) -> list:
    """Every torch batch norm module (BatchNorm1d/2d/3d, SyncBatchNorm) inside ``model``."""
    from torch.nn.modules.batchnorm import _BatchNorm

    return [m for m in model.modules() if isinstance(m, _BatchNorm)]


def set_bn_momentum(model, momentum) -> None:
    """Set ``momentum`` (a float, or None for the cumulative average) on every BN module."""
    for m in bn_modules(model):
        m.momentum = momentum


def recalibrate_bn(model, X, batch_size: int = 100) -> None:
    """Re-estimate every BN layer's running statistics on inputs ``X`` (a tensor); in place.

    Resets the running statistics, switches the BN layers to ``momentum=None`` so every batch
    gets the same weight, runs the model in training mode without gradients over ``X`` in
    consecutive batches, then restores each layer's momentum and the model's mode. No weight
    changes. ``len(X)`` should be a multiple of ``batch_size`` so that the average over
    batches is the average over examples (for the running mean exactly).
    """
    import torch

    layers = bn_modules(model)
    if not layers:
        raise ValueError("the model has no batch norm layer")
    old = [m.momentum for m in layers]
    was_training = model.training
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            xb = X[i : i + batch_size]
            if len(xb) > 1:
                model(xb)
    for m, mom in zip(layers, old):
        m.momentum = mom
    model.train(was_training)


def random_feature_shift(n_features: int, seed: int, max_scale: float = 4.0,
                         offset_std: float = 2.0):
    """A seeded shift ``x -> scale * x + offset`` per feature; returns ``(scale, offset)``.

    ``scale`` is log-uniform in ``[1 / max_scale, max_scale]``, ``offset`` normal with standard
    deviation ``offset_std``; both float32 torch tensors of shape ``(n_features,)``.
    """
    import torch

    if n_features < 1 or max_scale < 1.0 or offset_std < 0.0:
        raise ValueError("random_feature_shift needs n_features >= 1, max_scale >= 1 and "
                         f"offset_std >= 0, got {n_features}, {max_scale}, {offset_std}")
    g = torch.Generator().manual_seed(seed)
    log_s = float(np.log(max_scale))
    scale = torch.exp(torch.empty(n_features).uniform_(-log_s, log_s, generator=g))
    offset = offset_std * torch.randn(n_features, generator=g)
    return scale, offset
