"""Batch normalization layers with running statistics, modelled on torch/nn/modules/batchnorm.py.

``BatchNorm`` accepts any input of rank >= 2, (N, C, *spatial); ``BatchNorm1d`` (N, C) or
(N, C, L), ``BatchNorm2d`` (N, C, H, W) and ``BatchNorm3d`` (N, C, D, H, W) add torch's rank
checks. Parameters and buffers are float64 numpy arrays of shape (C,):

- ``weight`` (gamma, ones) and ``bias`` (beta, zeros); None when ``affine=False``
  (``bias`` also None with ``bias=False``, torch 2.13's keyword);
- ``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked``, a 0-d
  ``np.int64`` array (read it with ``int(layer.num_batches_tracked)``) updated in place
  like torch's buffer; all three None when ``track_running_stats=False``.

Behaviour, checked against torch 2.13 (tests/normlab/test_batchnorm_layer.py):

- Training forward uses batch statistics. While tracking, every training call first adds 1
  to ``num_batches_tracked`` -- also for an empty batch and also when the batch is then
  rejected (torch increments before ``F.batch_norm`` validates); then, for a non-empty batch,
  ``running = (1 - f) * running + f * batch`` with ``f = momentum``, or
  ``f = 1 / num_batches_tracked`` when ``momentum is None`` (cumulative average, empty batches
  counted), and the UNBIASED batch variance ``var * n / (n - 1)`` for ``running_var``.
- Eval forward uses the running statistics (any batch size, N = 1 included); without
  running statistics it uses batch statistics, so N = 1 raises there too.
- ``backward(dout)`` returns dx for the last forward and stores ``grad_weight`` and
  ``grad_bias`` (overwritten each call, not accumulated); in eval mode with running
  statistics ``dx = dout * gamma / sqrt(running_var + eps)``.
- Output dtype is the input's; float32 input is computed in float32.

One algorithm. The layers keep the bookkeeping (parameters, running buffers, modes, the
count of batches) and call one functional kernel, ``normlab.batchnorm`` (``batchnorm_forward``
/ ``batchnorm_backward_alt`` in training, ``batchnorm_eval_forward`` / ``batchnorm_eval_backward``
with running statistics), the arrangement of torch's ``_BatchNorm.forward`` and
``F.batch_norm``; ``BatchNorm1d/2d/3d`` only add torch's rank checks. In float64 the results
agree with torch 2.13 to rounding error (about 1e-15 relative to each quantity's scale), not
bit for bit: the two compute the same formulas with a different order of floating-point
operations.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .batchnorm import (
    batchnorm_backward_alt,
    batchnorm_eval_backward,
    batchnorm_eval_forward,
    batchnorm_forward,
)
from .running_stats import running_factor, update_moving_stats
from .validation import as_float_array, check_eps, check_flag, check_int, check_momentum

__all__ = ["BatchNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "IncompatibleKeys"]


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` skipped, as in torch."""

    missing_keys: list
    unexpected_keys: list


def _quoted(keys) -> str:
    return ", ".join(f'"{k}"' for k in keys)


def _to_numpy(value) -> np.ndarray:
    """A state-dict value (numpy array, number or torch tensor) as a numpy array."""
    if hasattr(value, "detach"):  # torch tensor: bfloat16/half have no numpy dtype
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.double()
        return value.numpy()
    return np.asarray(value)


class _NormBase:
    """Parameters, running buffers, modes and state dict shared by the batch norm layers."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool = True,
    ) -> None:
        self.num_features = check_int(num_features, "num_features", 1)
        self.eps = check_eps(eps)
        self.momentum = None if momentum is None else check_momentum(momentum)
        self.affine = check_flag(affine, "affine")
        self.track_running_stats = check_flag(track_running_stats, "track_running_stats")
        use_bias = check_flag(bias, "bias")
        c = self.num_features
        self.weight = np.ones(c) if self.affine else None
        self.bias = np.zeros(c) if self.affine and use_bias else None
        if self.track_running_stats:
            self.running_mean = np.zeros(c)
            self.running_var = np.ones(c)
            self.num_batches_tracked = np.array(0, dtype=np.int64)
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        self.training = True
        self.grad_weight = self.grad_bias = None
        self._cache = None
        self.reset_parameters()

    # -------------------------------------------------------------- state and modes

    def reset_running_stats(self) -> None:
        """running_mean = 0, running_var = 1, num_batches_tracked = 0 (when tracking)."""
        if self.track_running_stats:
            self.running_mean.fill(0.0)
            self.running_var.fill(1.0)
            self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        """Reset the running statistics, weight = 1 and bias = 0."""
        self.reset_running_stats()
        if self.weight is not None:
            self.weight.fill(1.0)
        if self.bias is not None:
            self.bias.fill(0.0)

    def train(self, mode: bool = True):
        """Set training mode (batch statistics, running-stat updates); return self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        return self

    def eval(self):
        """Set eval mode (running statistics when tracking); return self."""
        return self.train(False)

    def _entries(self):
        names = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
        return [(k, getattr(self, k)) for k in names if getattr(self, k) is not None]

    def state_dict(self) -> dict:
        """Copies of the parameters and buffers under torch's key names, in torch's order.

        Keys: weight, bias (if affine), running_mean, running_var, num_batches_tracked (if
        tracking). Unlike torch, the values are copies, not views of the live arrays.
        """
        return {k: v.copy() for k, v in self._entries()}

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values (numpy arrays or torch tensors) into the parameters and buffers.

        Raises RuntimeError with torch's wording for missing or unexpected keys (when
        ``strict``) and for shape mismatches. Nothing is changed if anything is wrong.
        """
        own = dict(self._entries())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors, values = [], {}
        if strict and unexpected:
            errors.append(f"Unexpected key(s) in state_dict: {_quoted(unexpected)}. ")
        if strict and missing:
            errors.append(f"Missing key(s) in state_dict: {_quoted(missing)}. ")
        for k, current in own.items():
            if k not in state_dict:
                continue
            value = _to_numpy(state_dict[k])
            if value.shape != current.shape:
                errors.append(
                    f"size mismatch for {k}: copying a param with shape {value.shape} from "
                    f"checkpoint, the shape in current model is {current.shape}."
                )
            elif k == "num_batches_tracked":
                if not np.issubdtype(value.dtype, np.integer) or value < 0:
                    errors.append(
                        f"num_batches_tracked must be a non-negative integer, got {value}"
                    )
                values[k] = value
            else:
                values[k] = as_float_array(value, k)
        if errors:
            header = f"Error(s) in loading state_dict for {type(self).__name__}:"
            raise RuntimeError("\n\t".join([header] + errors))
        for k, value in values.items():
            np.copyto(own[k], value, casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    @classmethod
    def from_torch(cls, module):
        """A layer with the configuration, state and mode of a torch BatchNorm module.

        ``BatchNorm.from_torch`` picks BatchNorm1d/2d/3d to match the module (generic
        BatchNorm for other ``_BatchNorm`` subclasses such as SyncBatchNorm);
        ``BatchNorm2d.from_torch`` etc. require the matching torch class.
        """
        import torch
        from torch.nn.modules.batchnorm import _BatchNorm
        from torch.nn.modules.lazy import LazyModuleMixin

        if not isinstance(module, _BatchNorm):
            raise TypeError(f"expected a torch BatchNorm module, got {type(module).__name__}")
        if isinstance(module, LazyModuleMixin) and module.has_uninitialized_params():
            raise ValueError(
                "the lazy torch module is not initialized yet; run it on a batch first"
            )
        matching = [c for c in (BatchNorm1d, BatchNorm2d, BatchNorm3d)
                    if isinstance(module, getattr(torch.nn, c.__name__))]
        if cls is BatchNorm:
            target = matching[0] if matching else BatchNorm
        elif cls in matching:
            target = cls
        else:
            raise TypeError(
                f"{cls.__name__}.from_torch needs torch.nn.{cls.__name__}, "
                f"got {type(module).__name__}"
            )
        layer = target(
            module.num_features,
            eps=module.eps,
            momentum=module.momentum,
            affine=module.affine,
            track_running_stats=module.track_running_stats,
            bias=module.bias is not None,
        )
        layer.load_state_dict(module.state_dict())
        return layer.train(module.training)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats})"
        )


class BatchNorm(_NormBase):
    """Batch normalization over (N, C, *spatial) input of any rank >= 2.

    ``BatchNorm(num_features, eps=1e-5, momentum=0.1, affine=True,
    track_running_stats=True, *, bias=True)``; see the module docstring for the exact
    torch 2.13 rules. ``forward(x)`` (or ``layer(x)``) returns an array of x's shape;
    ``backward(dout)`` returns dx.
    """

    def _check_input_dim(self, x: np.ndarray) -> None:
        if x.ndim < 2:
            raise ValueError(f"expected 2D or higher input (got {x.ndim}D input)")

    def _gamma_beta(self):
        """Copies of gamma and beta: the cache keeps gamma for backward, and an optimizer
        may update the live arrays in between."""
        c = self.num_features
        gamma = self.weight.copy() if self.weight is not None else np.ones(c)
        beta = self.bias if self.bias is not None else np.zeros(c)
        return gamma, beta

    def _update_running_stats(self, cache, n: int) -> None:
        f = running_factor(self.momentum, self.num_batches_tracked)
        mean, var = update_moving_stats(self.running_mean, self.running_var,
                                        cache.mu.astype(np.float64),
                                        cache.var.astype(np.float64), n, f)
        self.running_mean[...] = mean
        self.running_var[...] = var

    def forward(self, x) -> np.ndarray:
        """Normalize x of shape (N, C, *spatial); return an array of the same shape."""
        x = np.asarray(x)
        self._check_input_dim(x)
        tracking = self.training and self.track_running_stats
        if tracking:  # torch counts the batch before F.batch_norm validates it
            self.num_batches_tracked += 1
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"expected input with {self.num_features} channels (axis 1), got shape {x.shape}"
            )
        gamma, beta = self._gamma_beta()
        if self.training or self.running_mean is None:
            out, cache = batchnorm_forward(x, gamma, beta, self.eps)
            if tracking and x.size:
                self._update_running_stats(cache, x.size // x.shape[1])
        else:
            out, cache = batchnorm_eval_forward(
                x, gamma, beta, self.running_mean.copy(), self.running_var.copy(), self.eps
            )
        self._cache = cache
        return out

    def __call__(self, x) -> np.ndarray:
        return self.forward(x)

    def backward(self, dout) -> np.ndarray:
        """dx for the last forward; stores grad_weight and grad_bias (None if absent)."""
        if self._cache is None:
            raise RuntimeError("backward called before forward")
        cache = self._cache
        grad = batchnorm_backward_alt if cache.training else batchnorm_eval_backward
        dx, dgamma, dbeta = grad(dout, cache)
        self.grad_weight = dgamma if self.weight is not None else None
        self.grad_bias = dbeta if self.bias is not None else None
        return dx


class BatchNorm1d(BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) input, like torch.nn.BatchNorm1d."""

    def _check_input_dim(self, x: np.ndarray) -> None:
        if x.ndim not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {x.ndim}D input)")


class BatchNorm2d(BatchNorm):
    """Batch normalization of (N, C, H, W) input, like torch.nn.BatchNorm2d."""

    def _check_input_dim(self, x: np.ndarray) -> None:
        if x.ndim != 4:
            raise ValueError(f"expected 4D input (got {x.ndim}D input)")


class BatchNorm3d(BatchNorm):
    """Batch normalization of (N, C, D, H, W) input, like torch.nn.BatchNorm3d."""

    def _check_input_dim(self, x: np.ndarray) -> None:
        if x.ndim != 5:
            raise ValueError(f"expected 5D input (got {x.ndim}D input)")
