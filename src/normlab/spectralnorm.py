"""Spectral normalization (Miyato et al. 2018), exactly as torch 2.13's parametrization.

``torch.nn.utils.parametrizations.spectral_norm`` (class ``_SpectralNorm``) does, on every
access of the weight ``W``:

1. view ``W`` as a matrix with axis ``dim`` first and the other axes flattened: (h, w);
2. in TRAINING mode only, ``n_power_iterations`` times, in this order::

       u = normalize(W_mat @ v, eps)      # normalize(a) = a / max(||a||, eps)
       v = normalize(W_mat.T @ u, eps)

   (u is updated FIRST, from the stored v; so both u and v are state);
3. ``sigma = u . (W_mat @ v)``, with u and v constants for autograd;
4. return ``W / sigma``.

In eval mode step 2 is skipped. A 1-D weight is simply ``normalize(W, eps)`` (no u, v).
torch updates its buffers ``_u`` / ``_v`` in place; here the new u and v are returned.

Initialisation (``spectral_norm_init``): torch draws u ~ N(0, 1) of size h, then v ~ N(0, 1)
of size w, normalizes both and runs 15 power iterations. Registering the parametrization then
calls the forward once as a consistency check, which in training mode runs
``n_power_iterations`` MORE iterations: right after ``spectral_norm(module)`` a training-mode
module has had 15 + n_power_iterations iterations (an eval-mode module 15).
"""

from __future__ import annotations

import numpy as np

from .validation import (
    as_float_array,
    check_axis,
    check_eps,
    check_int,
    check_min_rank,
    check_param_shape,
)

__all__ = [
    "weight_to_matrix",
    "power_iteration",
    "spectral_norm",
    "spectral_norm_backward",
    "spectral_norm_init",
    "SpectralNorm",
]


def _check_iterations(n) -> int:
    """Return ``n`` as a positive int, with torch's message otherwise."""
    n = check_int(n, "n_power_iterations")
    if n <= 0:
        raise ValueError(
            f"Expected n_power_iterations to be positive, but got n_power_iterations={n}"
        )
    return int(n)


def _check_weight(W) -> np.ndarray:
    W = as_float_array(W, "W")
    check_min_rank(W, 1, "W")
    return W


def _normalize(a: np.ndarray, eps: float) -> np.ndarray:
    """``a / max(||a||_2, eps)``, as torch.nn.functional.normalize."""
    return a / max(float(np.sqrt(np.sum(a * a))), eps)


def weight_to_matrix(W, dim: int = 0) -> np.ndarray:
    """View ``W`` as the matrix (W.shape[dim], prod(other sizes)): ``dim`` first, rest flattened.

    Same as torch's ``W.permute(dim, *others).flatten(1)``. ``W`` needs at least 2 axes.
    """
    W = np.asarray(W)
    if W.ndim < 2:
        raise ValueError(f"expected W with at least 2 dimensions (got {W.ndim}D input)")
    dim = check_axis(dim, W.ndim, "dim")
    return np.moveaxis(W, dim, 0).reshape(W.shape[dim], -1)


def power_iteration(W_mat, u, v, n_power_iterations: int, eps: float = 1e-12):
    """``n_power_iterations`` of ``u = normalize(W_mat v); v = normalize(W_mat^T u)``.

    Shapes: ``W_mat`` (h, w), ``u`` (h,), ``v`` (w,); returns new ``(u, v)``.
    """
    for _ in range(n_power_iterations):
        u = _normalize(W_mat @ v, eps)
        v = _normalize(W_mat.T @ u, eps)
    return u, v


def _check_vectors(W, u, v, dim):
    """Validate u, v against the matrix view of W; return (W_mat, u, v)."""
    W_mat = weight_to_matrix(W, dim)
    u = check_param_shape(u, (W_mat.shape[0],), "u")
    v = check_param_shape(v, (W_mat.shape[1],), "v")
    return W_mat, u, v


def spectral_norm(W, u, v, n_power_iterations: int = 1, eps: float = 1e-12,
                  training: bool = True, dim: int = 0):
    """Spectral normalization of ``W`` as torch's parametrization: ``(W_sn, u, v, sigma)``.

    Shapes: ``W`` any float tensor with at least 1 axis; ``u`` (W.shape[dim],) and ``v``
    (prod of the other sizes,) are the power-iteration state (torch's ``_u``, ``_v``), both
    REQUIRED because torch computes u from v first. Training runs ``n_power_iterations``
    iterations and returns the updated u, v; eval returns them unchanged. ``W_sn`` has W's
    shape; ``sigma = u . (W_mat v)`` is a float. For a 1-D ``W``, u and v are unused (may be
    None) and ``W_sn = W / max(||W||, eps)`` with ``sigma = max(||W||, eps)``.
    """
    W = _check_weight(W)
    n_power_iterations = _check_iterations(n_power_iterations)
    eps = check_eps(eps)
    dim = check_axis(dim, W.ndim, "dim")
    if W.ndim == 1:
        sigma = max(float(np.linalg.norm(W)), eps)
        return W / sigma, u, v, sigma
    W_mat, u, v = _check_vectors(W, u, v, dim)
    if training:
        u, v = power_iteration(W_mat, u, v, n_power_iterations, eps)
    sigma = float(u @ (W_mat @ v))
    if sigma == 0:
        raise ValueError("sigma = u . (W v) is 0: W / sigma is undefined")
    return W / sigma, u, v, sigma


def spectral_norm_backward(dW_sn, W, u, v, eps: float = 1e-12, dim: int = 0) -> np.ndarray:
    """Gradient of ``W / sigma`` w.r.t. ``W``, with u and v constants (as in torch).

    ``u``, ``v`` are the vectors ``spectral_norm`` RETURNED (the ones sigma used).
    ``dW = dW_sn / sigma - (sum(dW_sn * W) / sigma^2) * (u v^T viewed in W's shape)``.
    For 1-D ``W``: the gradient of ``W / max(||W||, eps)``. Shapes: dW_sn and dW like W.
    """
    W = _check_weight(W)
    dW_sn = check_param_shape(dW_sn, W.shape, "dW_sn")
    eps = check_eps(eps)
    dim = check_axis(dim, W.ndim, "dim")
    inner = float(np.sum(dW_sn * W))
    if W.ndim == 1:
        norm = float(np.linalg.norm(W))
        if norm <= eps:  # the clamp max(., eps) is flat there
            return dW_sn / eps
        return dW_sn / norm - (inner / norm**3) * W
    W_mat, u, v = _check_vectors(W, u, v, dim)
    sigma = float(u @ (W_mat @ v))
    outer = np.outer(u, v).reshape(np.moveaxis(W, dim, 0).shape)  # u v^T, dim first
    return dW_sn / sigma - (inner / sigma**2) * np.moveaxis(outer, 0, dim)


def spectral_norm_init(W, rng_or_u0, v0=None, *, dim: int = 0, eps: float = 1e-12,
                       n_power_iterations: int = 1, training: bool = True):
    """The u, v torch's buffers hold right after ``spectral_norm(module, ...)``.

    ``rng_or_u0``: a ``numpy.random.Generator`` (then u0 ~ N(0, 1) of size h is drawn before
    v0 ~ N(0, 1) of size w, torch's order), or the raw draw u0 of shape (h,) with ``v0`` of
    shape (w,) (e.g. torch's own normal draws, to reproduce a module exactly). Both are
    normalized, then 15 power iterations run, then ``n_power_iterations`` more if
    ``training`` (torch's registration check calls the forward once). Returns ``(u, v)``.
    """
    W = _check_weight(W)
    W_mat = weight_to_matrix(W, dim)
    n_power_iterations = _check_iterations(n_power_iterations)
    eps = check_eps(eps)
    h, w = W_mat.shape
    if isinstance(rng_or_u0, np.random.Generator):
        if v0 is not None:
            raise ValueError("pass either a Generator or both u0 and v0, not a Generator and v0")
        u0 = rng_or_u0.standard_normal(h).astype(W.dtype)
        v0 = rng_or_u0.standard_normal(w).astype(W.dtype)
    else:
        if v0 is None:
            raise ValueError("v0 is required when u0 is given instead of a Generator")
        u0 = rng_or_u0
    _, u0, v0 = _check_vectors(W, u0, v0, dim)
    u, v = power_iteration(W_mat, _normalize(u0, eps), _normalize(v0, eps), 15, eps)
    if training:
        u, v = power_iteration(W_mat, u, v, n_power_iterations, eps)
    return u, v


class SpectralNorm:
    """Stateful spectral norm like torch's ``_SpectralNorm``: holds u, v and the mode.

    ``sn(W)`` returns ``W / sigma`` (running the power iterations in training mode and keeping
    the new u, v); ``sn.backward(dW_sn)`` is the gradient for the last call; ``sn.sigma`` the
    last sigma. Build it with ``SpectralNorm.from_weight(W, rng)`` for torch's initialisation.
    """

    def __init__(self, u, v, n_power_iterations: int = 1, eps: float = 1e-12, dim: int = 0):
        self.u = as_float_array(u, "u")
        self.v = as_float_array(v, "v")
        self.n_power_iterations = _check_iterations(n_power_iterations)
        self.eps = check_eps(eps)
        self.dim = dim
        self.training = True
        self.sigma = None
        self._last = None  # (W, u, v) used by the last call

    @classmethod
    def from_weight(cls, W, rng_or_u0, v0=None, *, n_power_iterations: int = 1,
                    eps: float = 1e-12, dim: int = 0, training: bool = True):
        """Initialise u, v as torch's registration does (see ``spectral_norm_init``)."""
        u, v = spectral_norm_init(W, rng_or_u0, v0, dim=dim, eps=eps,
                                  n_power_iterations=n_power_iterations, training=training)
        layer = cls(u, v, n_power_iterations, eps, dim)
        layer.training = training
        return layer

    def train(self, mode: bool = True) -> "SpectralNorm":
        self.training = bool(mode)
        return self

    def eval(self) -> "SpectralNorm":
        return self.train(False)

    def __call__(self, W) -> np.ndarray:
        """``W / sigma`` for weight ``W`` (shape as at construction); updates u, v in training."""
        W_sn, self.u, self.v, self.sigma = spectral_norm(
            W, self.u, self.v, self.n_power_iterations, self.eps, self.training, self.dim
        )
        self._last = (np.asarray(W), self.u, self.v)
        return W_sn

    def backward(self, dW_sn) -> np.ndarray:
        """Gradient w.r.t. the ``W`` of the last call (u, v held constant)."""
        if self._last is None:
            raise RuntimeError("call the SpectralNorm on a weight before backward")
        W, u, v = self._last
        return spectral_norm_backward(dW_sn, W, u, v, self.eps, self.dim)
