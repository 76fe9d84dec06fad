"""numpy replicas of torch 2.13's float64 CPU batch-norm kernels, operation by operation.

The BatchNorm layers (``normlab.layers``) use these for float64 input so that their outputs,
running buffers and gradients equal ``torch.nn.BatchNorm1d/2d/3d`` bit for bit. The
functional API (``normlab.batchnorm``) does not: it is arranged for numpy's speed and agrees
with torch to rounding error only.

What torch computes, and in which order (aten/src/ATen/native/Normalization.cpp and
aten/src/ATen/native/cpu/batch_norm_kernel.cpp; the FMA and lane details were measured
against the x86-64 wheel of torch 2.13.0+cpu: with CPU capability AVX512 its batch-norm
kernels behave exactly as under AVX2, ``Vectorized<double>`` with 4 lanes). ``N`` below is
the number of values per channel, ``T`` the number of torch threads
(``torch.get_num_threads()``), ``fma(a, b, c)`` the fused ``a * b + c`` (one rounding):

- Statistics, input (B, C) (and (B, C, 1), torch's "channels last" path). With B > T the
  rows are split like ``at::parallel_for(0, B, grain 1)``: chunks of ceil(B / T) rows; each
  chunk sums its rows in order into a zeroed buffer; the buffers are added in order;
  ``mean = sum / N``; then ``var_sum`` the same way, each chunk accumulating
  ``buf = fma(x - mean, x - mean, buf)``. With B <= T: one sequential sum; ``var_sum``
  accumulates with fma for C <= 16, while for C >= 17 it adds the rounded squares in order
  and fuses only an odd last row (how the compiler vectorized that loop).
- Statistics, input (B, C, L), L = prod(spatial) > 1: per channel one sequential sum over
  (b, l) in memory order; ``var_sum`` adds rounded squares in order except that, when L is
  odd, the last element of every length-L row is accumulated with fma.
- ``invstd = 1 / sqrt(var_sum / N + eps)`` (0 when that variance and eps are both 0);
  ``running_mean = m * mean + (1 - m) * running_mean``,
  ``running_var = m * (var_sum / (N - 1)) + (1 - m) * running_var``.
- Output (train and eval): ``alpha = invstd * weight``, ``beta = fma(-mean, alpha, bias)``,
  ``out = fma(x, alpha, beta)``; in eval ``invstd = 1 / sqrt(running_var + eps)`` and
  ``mean = running_mean``.
- Backward, (B, C): rows chunked as above (for every B, also B <= T); per chunk
  ``sum += dy`` and ``dotp = fma(x - mean, dy, dotp)``; chunk buffers added in order.
  (B, C, L): per (b, c) row a 4-lane ``vec::reduce_all`` of dy (lanes summed in order), and
  a 4-lane ``map2_reduce_all`` of ``(x - mean) * dy`` whose full blocks add rounded products
  and whose partial last block uses fma (rows shorter than 4: rounded products summed in
  order); rows added in order over b. Then ``grad_weight = dotp * invstd``,
  ``grad_bias = sum``; train ``k = dotp * invstd * invstd / N``,
  ``dx = ((dy - sum / N) - (x - mean) * k) * invstd * weight`` with the inner product-difference
  fused, except (B, C) channels ``c >= C - C % 4`` (the kernel's masked tail), which round
  ``(x - mean) * k`` first; eval ``dx = dy * invstd * weight``.

Other builds (torch's DEFAULT CPU capability without FMA, ARM) and other torch versions
round differently in places; the results then agree to rounding error, not bit for bit.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction

import numpy as np

__all__ = ["fma", "torch_threads", "batch_stats", "invstd_from_var", "affine",
           "update_running", "backward"]

LANES = 4  # Vectorized<double>::size() in the AVX2 build torch runs its batch-norm kernels in
_SPLIT = 134217729.0  # 2**27 + 1, Veltkamp's splitter for float64
_SAFE_HI = 2.0**960
_SAFE_LO = 2.0**-960


# ------------------------------------------------------------------------ fused multiply-add


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_prod(a, b):
    p = a * b
    t = _SPLIT * a
    ah = t - (t - a)
    al = a - ah
    t = _SPLIT * b
    bh = t - (t - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _fma_scalar(a: float, b: float, c: float) -> float:
    if not (math.isfinite(a) and math.isfinite(b)):
        return a * b + c
    if not math.isfinite(c):
        return c
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    try:
        return float(exact)
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


def fma(a, b, c) -> np.ndarray:
    """Correctly rounded ``a * b + c`` (one rounding, as the FMA instruction), float64.

    Dekker's exact product, then Boldo and Melquiond's rounding-to-odd sum ("Emulation of FMA
    and correctly rounded sums", IEEE TC 57(4), 2008); elements outside the range where that
    is exact (huge, tiny or non-finite values) are computed with Python fractions.
    """
    a, b, c = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                  np.asarray(c, np.float64))
    shape = a.shape
    a, b, c = a.ravel(), b.ravel(), c.ravel()
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        uh, ul = _two_prod(a, b)
        th, tl = _two_sum(c, uh)
        vh, vl = _two_sum(tl, ul)
        z = th + _round_to_odd(vh, vl)
        abs_p = np.abs(uh)
        unsafe = ~((np.abs(a) < _SAFE_HI) & (np.abs(b) < _SAFE_HI) & (np.abs(c) < _SAFE_HI)
                   & (abs_p < _SAFE_HI) & ((abs_p > _SAFE_LO) | (a == 0) | (b == 0)))
    for i in np.flatnonzero(unsafe):
        z[i] = _fma_scalar(float(a[i]), float(b[i]), float(c[i]))
    return z.reshape(shape)


def _round_to_odd(hi, lo):
    """hi + lo (exact, hi = RN(hi + lo)) rounded to odd: hi, or its neighbour towards lo when
    lo != 0 and hi's last significand bit is even."""
    even = (hi.view(np.int64) & 1) == 0
    return np.where((lo != 0) & even, np.nextafter(hi, np.copysign(np.inf, lo)), hi)


def _fma_chain(a: np.ndarray, b: np.ndarray, acc: np.ndarray, plain=None) -> np.ndarray:
    """``acc = fma(a[i], b[i], acc)`` for i = 0, 1, ... along axis 0, in order; with
    ``plain`` (steps, k, ...), step i first adds ``plain[i, 0]``, ..., ``plain[i, k-1]`` to
    acc one by one (rounding each time).

    The exact products are split once for all steps; each fused step is then the
    rounding-to-odd sum of three terms (as in ``fma``).
    """
    acc = np.array(acc, dtype=np.float64)
    if a.shape[0] == 0:
        return acc
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        ph, pl = _two_prod(a, b)
        abs_p = np.abs(ph)
        bound = abs_p.sum(axis=0) + np.abs(acc)
        if plain is not None:
            bound = bound + np.abs(plain).sum(axis=(0, 1))
        safe = (np.all(np.abs(a) < _SAFE_HI) and np.all(np.abs(b) < _SAFE_HI)
                and np.all(bound < _SAFE_HI)
                and np.all((abs_p > _SAFE_LO) | (a == 0) | (b == 0)))
    for i in range(a.shape[0]):
        if plain is not None:
            acc = _seq(plain[i], acc)
        if not safe:
            acc = fma(a[i], b[i], acc)
            continue
        th, tl = _two_sum(acc, ph[i])
        vh, vl = _two_sum(tl, pl[i])
        acc = th + _round_to_odd(vh, vl)
    return acc


# --------------------------------------------------------------------------------- helpers


def torch_threads() -> int:
    """``torch.get_num_threads()`` if torch has been imported, else 1 (never imports torch)."""
    torch = sys.modules.get("torch")
    get = getattr(torch, "get_num_threads", None)
    if get is None:
        return 1
    try:
        return max(1, int(get()))
    except Exception:  # pragma: no cover - a half-initialized torch
        return 1


def _chunks(n: int, threads: int):
    """Row ranges of ``at::parallel_for(0, n, 1, f)`` on ``threads`` OpenMP threads."""
    if n <= 1 or threads <= 1:
        return [(0, n)]
    size = -(-n // min(threads, n))
    return [(b, min(n, b + size)) for b in range(0, n, size)]


def _seq(rows: np.ndarray, start: np.ndarray) -> np.ndarray:
    """``((start + rows[0]) + rows[1]) + ...`` over axis 0, strictly in order."""
    if rows.shape[0] == 0:
        return start.copy()
    return np.add.accumulate(np.concatenate([start[None], rows]), axis=0)[-1]


def _by_chunk(rows: np.ndarray, parts) -> np.ndarray:
    """rows (B, C) as (chunk length, number of chunks, C): step i of every chunk in one row,
    the short last chunk padded with zeros (``fma(0, 0, buf)`` leaves buf unchanged)."""
    size = parts[0][1] - parts[0][0]
    padded = np.zeros((len(parts) * size,) + rows.shape[1:])
    padded[: rows.shape[0]] = rows
    return padded.reshape((len(parts), size) + rows.shape[1:]).swapaxes(0, 1)


def _chunked_fma_sum(a: np.ndarray, b: np.ndarray, parts) -> np.ndarray:
    """Per chunk ``buf = fma(a[i], b[i], buf)`` from a zeroed buffer; buffers summed in order."""
    a3, b3 = _by_chunk(a, parts), _by_chunk(b, parts)
    return _sum_buffers(_fma_chain(a3, b3, np.zeros(a3.shape[1:])))


def _sum_buffers(bufs: np.ndarray) -> np.ndarray:
    """torch's second pass: ``acc = 0; acc += buf[t]`` for every thread's buffer, in order."""
    return _seq(bufs, np.zeros(bufs.shape[1:]))


# ------------------------------------------------------------------------------- forward


def batch_stats(x: np.ndarray, threads: int):
    """Batch mean and ``var_sum`` (sum of squared deviations) per channel, as torch's
    ``batch_norm_cpu_collect_stats_kernel``. x: float64 (B, C, *spatial), non-empty."""
    b, c = x.shape[:2]
    length = x.size // (b * c)
    zero = np.zeros(c)
    if length == 1:  # torch's channels-last path
        x2 = x.reshape(b, c)
        if b > threads:
            parts = _chunks(b, threads)
            mean = _sum_buffers(np.stack([_seq(x2[p:q], zero) for p, q in parts])) / b
            d = x2 - mean
            return mean, _chunked_fma_sum(d, d, parts)
        mean = _seq(x2, zero) / b
        d = x2 - mean
        cut = 0 if c <= 16 else b - b % 2
        return mean, _fma_chain(d[cut:], d[cut:], _seq(d[:cut] * d[:cut], zero))
    x3 = x.reshape(b, c, length)
    mean = _seq(x3.transpose(0, 2, 1).reshape(-1, c), zero) / (b * length)
    d = x3 - mean[:, None]
    sq = d * d
    if length % 2 == 0:
        return mean, _seq(sq.transpose(0, 2, 1).reshape(-1, c), zero)
    # odd L: each row's first L - 1 squares added rounded, its last one fused
    last = d[:, :, -1]
    return mean, _fma_chain(last, last, zero, plain=sq[:, :, :-1].transpose(0, 2, 1))


def invstd_from_var(var: np.ndarray, eps: float) -> np.ndarray:
    """torch's ``InvStd``: ``1 / sqrt(var + eps)``, and 0 where var and eps are both 0."""
    with np.errstate(divide="ignore"):
        invstd = 1.0 / np.sqrt(var + eps)
    return np.where((var == 0) & (eps == 0), 0.0, invstd)


def affine(x: np.ndarray, mean, invstd, weight, bias) -> np.ndarray:
    """``out = fma(x, alpha, beta)``, ``alpha = invstd * weight``, ``beta = fma(-mean, alpha,
    bias)`` (``batch_norm_cpu_collect_linear_and_constant_terms`` and the output loop)."""
    keep = (1, -1) + (1,) * (x.ndim - 2)
    alpha = invstd * weight
    beta = fma(-mean, alpha, bias)
    return fma(x, alpha.reshape(keep), beta.reshape(keep))


def update_running(running_mean, running_var, mean, var_sum, n: int, factor: float) -> None:
    """In place: ``m * mean + (1 - m) * running``; ``running_var`` with ``var_sum / (n - 1)``."""
    running_mean[...] = factor * mean + (1.0 - factor) * running_mean
    running_var[...] = factor * (var_sum / (n - 1)) + (1.0 - factor) * running_var


# ------------------------------------------------------------------------------ backward


def _lane_sum(acc: np.ndarray) -> np.ndarray:
    out = acc[..., 0]
    for j in range(1, acc.shape[-1]):
        out = out + acc[..., j]
    return out


def _row_sums(dy: np.ndarray, xc: np.ndarray):
    """Per (b, c) row of length L: ``vec::reduce_all`` of dy and ``vec::map2_reduce_all`` of
    ``xc * dy`` with LANES lanes -> two (B, C) arrays."""
    length = dy.shape[-1]
    prod = xc * dy
    if length < LANES:
        return _lane_sum(dy), _lane_sum(prod)
    full = length - length % LANES
    blocks = (dy.shape[0], dy.shape[1], full // LANES, LANES)
    acc_s = np.add.accumulate(dy[..., :full].reshape(blocks), axis=2)[:, :, -1]
    acc_d = np.add.accumulate(prod[..., :full].reshape(blocks), axis=2)[:, :, -1]
    r = length - full
    if r:
        acc_s[..., :r] = acc_s[..., :r] + dy[..., full:]
        acc_d[..., :r] = fma(xc[..., full:], dy[..., full:], acc_d[..., :r])
    return _lane_sum(acc_s), _lane_sum(acc_d)


def backward(dout: np.ndarray, x: np.ndarray, weight, mean, invstd, training: bool,
             threads: int):
    """``(dx, grad_weight, grad_bias)`` as torch's ``batch_norm_cpu_backward_kernel``.

    mean, invstd: the saved batch statistics (training) or ``running_mean`` and
    ``1 / sqrt(running_var + eps)`` (eval); weight: (C,), ones when the layer has none.
    """
    b, c = x.shape[:2]
    length = x.size // (b * c)
    n = b * length
    zero = np.zeros(c)
    keep = (1, -1) + (1,) * (x.ndim - 2)
    if length == 1:
        x2, d2 = x.reshape(b, c), dout.reshape(b, c)
        parts = _chunks(b, threads)
        sums = _sum_buffers(np.stack([_seq(d2[p:q], zero) for p, q in parts]))
        dotp = _chunked_fma_sum(x2 - mean, d2, parts)
    else:
        x3, d3 = x.reshape(b, c, length), dout.reshape(b, c, length)
        rs, rd = _row_sums(d3, x3 - mean[:, None])
        sums, dotp = _seq(rs, zero), _seq(rd, zero)
    grad_weight, grad_bias = dotp * invstd, sums
    if not training:
        dx = dout * invstd.reshape(keep) * weight.reshape(keep)
        return dx, grad_weight, grad_bias
    k = (dotp * invstd * invstd / n).reshape(keep)
    xc = x - mean.reshape(keep)
    centred = dout - (sums / n).reshape(keep)
    dx = fma(-xc, k, centred)
    if length == 1 and c % LANES:
        tail = slice(c - c % LANES, c)
        dx[:, tail] = centred[:, tail] - xc[:, tail] * k[:, tail]
    return dx * invstd.reshape(keep) * weight.reshape(keep), grad_weight, grad_bias
