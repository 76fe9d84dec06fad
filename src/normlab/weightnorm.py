"""Weight normalization (Salimans & Kingma 2016): ``w = g * v / ||v||``.

The norm is taken over every axis except ``dim`` (default 0: one norm per output row of a
Linear weight (out, in), or per output channel of a conv kernel). Matches
``torch.nn.utils.parametrizations.weight_norm(module, dim=dim)``, whose
``parametrizations.weight.original0`` is ``g`` and ``original1`` is ``v``.

Shape of ``g``: torch keeps the reduced axes, so ``g`` has v's shape with 1 on every axis
but ``dim`` (Linear, dim=0: (out, 1)); the flat shape ``(v.shape[dim],)`` is accepted too,
and ``dg`` comes back in whichever shape ``g`` had.

``dim=None`` is one norm over the whole tensor and ``g`` has shape ``()``. torch quirk,
mirrored: torch represents None as ``dim=-1``, so ``weight_norm(module, dim=-1)`` ALSO means
the whole tensor, not the last axis; other negative dims count from the end as usual.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .validation import as_float_array, check_axis, check_min_rank, check_param_shape

__all__ = ["weightnorm_forward", "weightnorm_backward"]


class WeightNormCache(NamedTuple):
    """What ``weightnorm_backward`` needs: v, g and ||v|| in broadcastable shapes."""

    v: np.ndarray
    g: np.ndarray  # g in the keepdims shape, broadcastable against v
    norm: np.ndarray  # ||v|| in the keepdims shape
    axes: tuple[int, ...]  # the reduced axes
    g_shape: tuple[int, ...]  # the shape g was given in (dg is returned in it)


def _norm_axes(dim, ndim: int) -> tuple[int, ...]:
    """Axes the norm is taken over: all but ``dim``; all of them for None or -1 (as torch)."""
    if dim is None or (not isinstance(dim, bool) and dim == -1):
        return tuple(range(ndim))
    dim = check_axis(dim, ndim, "dim", "an int or None")
    return tuple(a for a in range(ndim) if a != dim)


def weightnorm_forward(v, g, dim=0):
    """Weight norm: return ``(w, cache)`` with ``w = g * v / ||v||``, same shape as ``v``.

    Shapes: ``v`` any float tensor with at least 1 axis; ``g`` of shape ``norm_shape`` (v's
    shape with 1 on every axis but ``dim``, as torch's original0) or ``(v.shape[dim],)``;
    ``()`` when ``dim`` is None (or -1, as in torch). Every norm must be non-zero.
    """
    v = as_float_array(v, "v")
    check_min_rank(v, 1, "v")
    axes = _norm_axes(dim, v.ndim)
    keep_shape = tuple(1 if a in axes else s for a, s in enumerate(v.shape))
    g = as_float_array(g, "g")
    if len(axes) == v.ndim:
        allowed = [()]
    else:
        allowed = [keep_shape, (v.shape[_kept_axis(axes, v.ndim)],)]
    if g.shape not in allowed:
        expected = " or ".join(str(s) for s in dict.fromkeys(allowed))
        raise ValueError(f"g must have shape {expected}, got {g.shape}")
    norm = np.sqrt(np.sum(v * v, axis=axes, keepdims=True))
    if np.any(norm == 0):
        raise ValueError("v has a zero-norm slice: w = g * v / ||v|| is undefined there")
    g_keep = g.reshape(norm.shape)
    return g_keep * v / norm, WeightNormCache(v, g_keep, norm, axes, g.shape)


def _kept_axis(axes: tuple[int, ...], ndim: int) -> int:
    """The single axis not in ``axes``."""
    return next(a for a in range(ndim) if a not in axes)


def weightnorm_backward(dw, cache: WeightNormCache):
    """Backward of ``weightnorm_forward``: return ``(dv, dg)`` shaped like ``v`` and ``g``.

    ``dg = sum(dw * v) / ||v||`` (over the norm's axes);
    ``dv = (g / ||v||) * dw - (g * dg / ||v||^2) * v``.
    """
    dw = check_param_shape(dw, cache.v.shape, "dw")
    dg = np.sum(dw * cache.v, axis=cache.axes, keepdims=True) / cache.norm
    dv = (cache.g / cache.norm) * dw - (cache.g * dg / cache.norm**2) * cache.v
    return dv, dg.reshape(cache.g_shape)
