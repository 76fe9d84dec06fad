"""torch modules for the chapters' experiments where torch has none.

* ``BatchRenorm1d`` / ``BatchRenorm2d``: batch renormalization (Ioffe 2017) with the same
  conventions as ``normlab.renorm`` (sigma_B = sqrt(var_B + eps) with the biased batch
  variance, sigma = sqrt(running_var + eps), r and d detached, running statistics updated
  exactly as ``nn.BatchNorm``). ``r_max`` / ``d_max`` are plain attributes, so a schedule can
  change them between steps: ``layer.r_max, layer.d_max = renorm_schedule(step)``.
  With r_max = 1, d_max = 0 the module is ``nn.BatchNorm`` (running stats included).
* ``NoisyBatchNorm1d`` / ``NoisyBatchNorm2d``: Santurkar et al. 2018's "noisy BatchNorm", an
  ``nn.BatchNorm`` followed, in training only, by additive noise (model below).

Noise model of the noisy batch norm (our choice; the paper specifies only "i.i.d. noise with
non-zero mean and non-unit variance that changes at every step"). At every training forward,
for every channel c a fresh noise distribution is drawn::

    m_c ~ U(-mean_range, mean_range)        # the noise mean (non-zero with probability 1)
    s_c ~ U(std_range[0], std_range[1])     # the noise std (non-unit with probability 1)

and every activation of every sample in channel c gets ``y + m_c + s_c * z``, z ~ N(0, 1)
i.i.d. The noise is a constant for autograd; eval adds nothing. The last noise tensor is kept
in ``last_noise``. Pass ``seed`` or a ``torch.Generator`` for reproducible noise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .running_stats import running_factor, update_moving_stats
from .validation import check_number

__all__ = ["BatchRenorm1d", "BatchRenorm2d", "NoisyBatchNorm1d", "NoisyBatchNorm2d"]


def _channel_view(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """Reshape a (C,) tensor to broadcast along axis 1 of an ``ndim``-D input."""
    return t.reshape((1, -1) + (1,) * (ndim - 2))


class _BatchRenorm(nn.Module):
    """Batch renormalization over axis 1; subclasses only check the input rank."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 r_max: float = 3.0, d_max: float = 5.0, affine: bool = True,
                 device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.r_max = r_max
        self.d_max = d_max
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features, **factory))
            self.bias = nn.Parameter(torch.zeros(num_features, **factory))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", torch.zeros(num_features, **factory))
        self.register_buffer("running_var", torch.ones(num_features, **factory))
        self.register_buffer(
            "num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device)
        )

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"r_max={self.r_max}, d_max={self.d_max}, affine={self.affine}")

    def _check_limits(self) -> None:
        check_number(self.r_max, "r_max", 1.0)
        check_number(self.d_max, "d_max", 0.0)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        raise NotImplementedError


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C) or (N, C, *spatial); output of the same shape."""
        self._check_input_dim(x)
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        self._check_limits()
        n = x.numel() // x.size(1)
        if n == 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {x.size()}"
            )
        self.num_batches_tracked.add_(1)
        if x.numel() == 0:  # as nn.BatchNorm: empty output, running statistics unchanged
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        dims = [0, *range(2, x.dim())]
        mean = x.mean(dims)
        var = x.var(dims, unbiased=False)
        sigma_b = torch.sqrt(var + self.eps)
        with torch.no_grad():  # r, d and the running statistics carry no gradient
            sigma = torch.sqrt(self.running_var + self.eps)
            r = (sigma_b / sigma).clamp(1.0 / self.r_max, self.r_max)
            d = ((mean - self.running_mean) / sigma).clamp(-self.d_max, self.d_max)
            factor = running_factor(self.momentum, self.num_batches_tracked)
            new_mean, new_var = update_moving_stats(self.running_mean, self.running_var,
                                                    mean, var, n, factor)
            self.running_mean.copy_(new_mean)
            self.running_var.copy_(new_var)
        def per_channel(t):
            return _channel_view(t, x.dim())

        x_hat = (x - per_channel(mean)) / per_channel(sigma_b) * per_channel(r) + per_channel(d)
        if self.weight is None:
            return x_hat
        return x_hat * per_channel(self.weight) + per_channel(self.bias)


class BatchRenorm1d(_BatchRenorm):
    """Batch renormalization for (N, C) or (N, C, L) input, like nn.BatchNorm1d."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {x.dim()}D input)")


class BatchRenorm2d(_BatchRenorm):
    """Batch renormalization for (N, C, H, W) input, like nn.BatchNorm2d."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"expected 4D input (got {x.dim()}D input)")


class _NoiseAfterBatchNorm:
    """Mixin: a torch batch norm whose training output gets per-step noise (see module doc)."""

    def __init__(self, num_features: int, *, mean_range: float = 0.5,
                 std_range: tuple[float, float] = (0.5, 1.5),
                 generator: torch.Generator | None = None, seed: int | None = None,
                 **batchnorm_kwargs):
        super().__init__(num_features, **batchnorm_kwargs)
        if not mean_range > 0:
            raise ValueError(f"mean_range must be > 0 for a non-zero noise mean, got {mean_range}")
        low, high = std_range
        if not 0 <= low < high:
            raise ValueError(f"std_range must be (low, high) with 0 <= low < high, got {std_range}")
        if generator is not None and seed is not None:
            raise ValueError("pass either generator or seed, not both")
        if seed is not None:
            generator = torch.Generator().manual_seed(seed)
        self.mean_range = float(mean_range)
        self.std_range = (float(low), float(high))
        self.generator = generator
        self.last_noise = None

    def sample_noise(self, like: torch.Tensor) -> torch.Tensor:
        """Draw this step's noise: shape and dtype of ``like``, distribution per channel."""
        device = self.generator.device if self.generator is not None else like.device
        opts = {"generator": self.generator, "dtype": like.dtype, "device": device}
        u = torch.rand(2, like.size(1), **opts)
        mean = (2 * u[0] - 1) * self.mean_range
        low, high = self.std_range
        std = low + (high - low) * u[1]
        z = torch.randn(like.shape, **opts)
        noise = _channel_view(mean, like.dim()) + _channel_view(std, like.dim()) * z
        return noise.to(like.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if not self.training:
            return y
        with torch.no_grad():
            self.last_noise = self.sample_noise(y)
        return y + self.last_noise


class NoisyBatchNorm1d(_NoiseAfterBatchNorm, nn.BatchNorm1d):
    """nn.BatchNorm1d plus per-step noise in training (Santurkar et al. 2018)."""


class NoisyBatchNorm2d(_NoiseAfterBatchNorm, nn.BatchNorm2d):
    """nn.BatchNorm2d plus per-step noise in training (Santurkar et al. 2018)."""
