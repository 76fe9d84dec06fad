"""Folding an eval-mode batch norm into the preceding Linear or convolution.

At inference, BN is the per-channel affine map ``y = z * s + (beta - running_mean * s)`` with
``s = gamma / sqrt(running_var + eps)``, so for ``z = W x + b`` (or a convolution, whose
output channel is the weight's axis 0):

    W' = W * s[:, None, ...]        b' = (b - running_mean) * s + beta

and the folded layer computes exactly ``bn(layer(x))``: BN costs nothing at inference.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_float_array
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


def _array(a, name: str) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor or Parameter
        a = a.detach().cpu().double().numpy()
    return as_float_array(a, name)


def fold_batchnorm(weight, bias, bn):
    """Fold eval-mode batch norm ``bn`` into the layer before it; return ``(weight, bias)``.

    weight: Linear (out, in) or convolution (out, in / groups, *kernel); bias: (out,) or
    None (zeros). bn: a normlab BatchNorm layer or a torch BatchNorm module with running
    statistics and ``bn.num_features == out``; it must be in eval mode, the only mode in
    which BN is a fixed affine map. Returns the folded weight (shape of ``weight``) and bias
    (out,), computed in float64 and returned in ``weight``'s dtype. (A ConvTranspose weight
    has its output channels on axis 1; move them to axis 0 first.)
    """
    bn = _as_numpy_layer(bn)
    weight = _array(weight, "weight")
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
    return folded_w.astype(weight.dtype, copy=False), folded_b.astype(weight.dtype, copy=False)
