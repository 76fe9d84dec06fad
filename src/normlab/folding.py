"""Folding an eval-mode batch norm into the preceding Linear or convolution.

At inference, BN is the per-channel affine map ``y = z * s + (beta - running_mean * s)`` with
``s = gamma / sqrt(running_var + eps)``, so for ``z = W x + b`` (or a convolution, whose
output channel is the weight's axis 0):

    W' = W * s[:, None, ...]        b' = (b - running_mean) * s + beta

and the folded layer computes exactly ``bn(layer(x))``: BN costs nothing at inference.
"""

from __future__ import annotations

import numpy as np

from .validation import as_float_array
from .layers import BatchNorm, _NormBase

__all__ = ["fold_batchnorm"]


def _as_numpy_layer(bn) -> _NormBase:
    if isinstance(bn, _NormBase):
        return bn
    try:
        from torch.nn.modules.batchnorm import _BatchNorm
    except ImportError:  # pragma: no cover - torch is a dependency
        _BatchNorm = ()
    if isinstance(bn, _BatchNorm):
        return BatchNorm.from_torch(bn)
    raise TypeError(f"bn must be a normlab or torch BatchNorm layer, got {type(bn).__name__}")


def _is_torch(a) -> bool:
    return hasattr(a, "detach") and hasattr(a, "is_floating_point")  # tensor or Parameter


def _array(a, name: str) -> np.ndarray:
    if _is_torch(a):
        if not a.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {a.dtype}")
        a = a.detach().cpu().double().numpy()
    return as_float_array(a, name)


def _like(weight, weight_array: np.ndarray):
    """A function giving a float64 result the type and dtype of ``weight``."""
    if _is_torch(weight):
        import torch

        def to_torch(a: np.ndarray):
            a = torch.from_numpy(np.ascontiguousarray(a))
            return a.to(dtype=weight.dtype, device=weight.device)

        return to_torch
    return lambda a: a.astype(weight_array.dtype, copy=False)


def fold_batchnorm(weight, bias, bn):
    """Fold eval-mode batch norm ``bn`` into the layer before it; return ``(weight, bias)``.

    weight: Linear (out, in) or convolution (out, in / groups, *kernel); bias: (out,) or
    None (zeros). bn: a normlab BatchNorm layer or a torch BatchNorm module with running
    statistics and ``bn.num_features == out``; it must be in eval mode, the only mode in
    which BN is a fixed affine map. Returns the folded weight (shape of ``weight``) and bias
    (out,), computed in float64 and returned in ``weight``'s type and dtype: numpy arrays for
    a numpy weight (float32 in, float32 out), detached torch tensors of the weight's dtype and
    device for a torch tensor or Parameter (whatever the type of ``bias``), ready for
    ``layer.weight.copy_``. (A ConvTranspose weight has its output channels on axis 1; move
    them to axis 0 first.)
    """
    bn = _as_numpy_layer(bn)
    like = weight
    weight = _array(weight, "weight")
    result = _like(like, weight)
    if weight.ndim < 2:
        raise ValueError(
            f"weight must be a Linear (out, in) or conv (out, in, *kernel) weight, got shape "
            f"{weight.shape}"
        )
    out = weight.shape[0]
    if out != bn.num_features:
        raise ValueError(
            f"shape mismatch: weight has {out} output channels (axis 0) but bn has "
            f"num_features={bn.num_features}"
        )
    bias = np.zeros(out) if bias is None else _array(bias, "bias")
    if bias.shape != (out,):
        raise ValueError(f"bias must have shape ({out},), got {bias.shape}")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(
            "bn has no running statistics (track_running_stats=False): it normalizes with "
            "batch statistics, which cannot be folded into fixed weights"
        )
    if bn.training:
        raise ValueError(
            "bn is in training mode, where it uses batch statistics; call bn.eval() before "
            "folding"
        )
    gamma = bn.weight if bn.weight is not None else np.ones(out)
    beta = bn.bias if bn.bias is not None else np.zeros(out)
    scale = gamma / np.sqrt(bn.running_var + bn.eps)
    folded_w = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    folded_b = (bias - bn.running_mean) * scale + beta
    return result(folded_w), result(folded_b)
