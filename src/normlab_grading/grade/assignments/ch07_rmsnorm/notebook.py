# %% [markdown]
# # Assignment 7: RMS normalization, forward and backward
#
# Chapter 7 of the book introduces RMS normalization (均方根归一化, RMSNorm), the
# normalization of today's large language models: layer norm without the centring and
# without the shift. Over the normalized axes it divides by the root mean square and scales
# by a learnable `gamma`:
#
# $$
# \mathrm{rms}(x) = \sqrt{\tfrac{1}{d}\textstyle\sum_i x_i^2 + \epsilon}, \qquad
# \hat x = \frac{x}{\mathrm{rms}(x)}, \qquad y = \gamma \odot \hat x ,
# $$
#
# with $d$ the number of normalized values. As in `torch.nn.RMSNorm`, the normalized axes
# are the **trailing** axes of shape `gamma.shape`: `gamma` of shape `(D,)` normalizes each
# length-`D` vector of an `(N, D)` or `(N, T, D)` input, `gamma` of shape `(T, D)` each
# `(T, D)` block of an `(N, T, D)` input. `eps=None` means torch's default, the machine
# epsilon of x's dtype, `np.finfo(x.dtype).eps` (2.2e-16 for float64, 1.2e-7 for float32:
# one test passes float32 input).
#
# You implement, in numpy (CS231n's functional style):
#
# 1. `rmsnorm_forward(x, gamma, eps=None)`, returning `(out, cache)`;
# 2. `rmsnorm_backward(dout, cache)`, returning `(dx, dgamma)`.
#
# **The cache.** `rmsnorm_forward` returns `cache = (x, x_hat, rms, gamma, eps)`: the input,
# the normalized input, the root mean square with the normalized axes kept as axes of
# length 1 (`keepdims=True`, so `x / rms` broadcasts), gamma and the eps actually used.
# The tests give `rmsnorm_backward` a cache in exactly this layout, so a mistake in the
# forward pass does not also cost you the backward points.
#
# Use numpy only. Calling `normlab`, torch's `rms_norm` / `RMSNorm` or its autograd (or any
# library normalization routine) inside a graded function scores 0 for that test, with a
# message saying why.
#
# ## How you are graded
#
# Each test cell runs a visible test, which you can run yourself, and hidden tests on
# other inputs (other shapes and values) when your notebook is graded. A test cell scores
# its points only if every test in it passes. Total: {{total}} points.
#
# {{points_table}}
#
# Check your work with the visible tests (run all cells), then
# `nbgrader validate exercises/07-rmsnorm/07-rmsnorm.ipynb` from the repository root.
#
# ### What the checker recognises
#
# When a test fails because of one of these common mistakes, the message names it. The
# last column is the score of a notebook whose only mistake is that one.
#
# {{mistakes_table}}
#
# Any other wrong answer gets the largest error and the index of the worst entry.
# A warning printed by your code does not cost points: it is shown as a note.

# %%
import numpy as np

# %% [markdown]
# ## 1. Forward pass
#
# Normalize over the last `gamma.ndim` axes of `x`. First check that those axes have
# gamma's shape, `x.shape[x.ndim - gamma.ndim:] == gamma.shape`, and raise `ValueError`
# otherwise (as torch does): a gamma of shape `(1, D)` broadcasts against `(N, T, D)`, so
# numpy alone would not complain.

# %% [solution] id=rmsnorm_forward
def rmsnorm_forward(x, gamma, eps=None):
    """RMS normalization over the trailing axes of shape gamma.shape.

    Inputs:
    - x: float array of shape (*, *gamma.shape), e.g. (N, D) or (N, T, D).
    - gamma: scale, shape normalized_shape (at least one axis), e.g. (D,) or (T, D).
    - eps: added to the mean square; None means np.finfo(x.dtype).eps (torch's default).

    Returns a tuple of:
    - out: gamma * x / sqrt(mean(x**2) + eps), shape of x.
    - cache: (x, x_hat, rms, gamma, eps); x_hat of shape x.shape, rms of shape x.shape
      with the normalized axes of length 1, eps the value used.

    Raises ValueError if the trailing shape of x is not gamma.shape.
    """
    ### BEGIN SOLUTION
    k = gamma.ndim
    if k == 0 or x.ndim < k or x.shape[x.ndim - k:] != gamma.shape:
        raise ValueError(f"the trailing shape of x {x.shape} must be gamma's shape {gamma.shape}")
    if eps is None:
        eps = float(np.finfo(x.dtype).eps)
    axes = tuple(range(x.ndim - k, x.ndim))
    rms = np.sqrt(np.mean(x ** 2, axis=axes, keepdims=True) + eps)
    x_hat = x / rms
    out = gamma * x_hat
    cache = (x, x_hat, rms, gamma, eps)
    ### END SOLUTION
    return out, cache

# %% [tests] id=test_rms_forward

# %% [tests] id=test_rms_forward_two_axes

# %% [tests] id=test_rms_forward_3d_last

# %% [tests] id=test_rms_forward_eps

# %% [tests] id=test_rms_forward_default_eps

# %% [tests] id=test_rms_shape_check

# %% [markdown]
# ## 2. Backward pass
#
# `x` reaches the loss along two paths: directly through `x_hat = x / rms`, and through
# `rms`, which depends on every value of its normalized slice. With `g = dout * gamma` (the
# gradient reaching `x_hat`) and means over the normalized axes, the two paths add up to
#
# $$
# \frac{\partial L}{\partial x} = \frac{1}{\mathrm{rms}}\Big(g - \hat x\,
# \overline{g \hat x}\Big), \qquad
# \frac{\partial L}{\partial \gamma} = \sum_{\text{leading axes}}
# \frac{\partial L}{\partial y} \odot \hat x .
# $$
#
# Derive it yourself: `d rms / d x_i = x_i / (d * rms)`. Compare with layer norm's backward:
# there is no `- mean(g)` term, since no mean was subtracted.

# %% [solution] id=rmsnorm_backward
def rmsnorm_backward(dout, cache):
    """Backward pass of rmsnorm_forward.

    Inputs:
    - dout: upstream gradient, shape of x.
    - cache: (x, x_hat, rms, gamma, eps) from rmsnorm_forward.

    Returns a tuple of:
    - dx: gradient with respect to x, shape of x.
    - dgamma: gradient with respect to gamma, shape of gamma (summed over the leading axes).
    """
    x, x_hat, rms, gamma, eps = cache
    ### BEGIN SOLUTION
    axes = tuple(range(dout.ndim - gamma.ndim, dout.ndim))
    leading = tuple(range(dout.ndim - gamma.ndim))
    dgamma = (dout * x_hat).sum(axis=leading)
    g = dout * gamma
    dx = g / rms  # the path through x_hat = x / rms with rms held fixed
    dx = dx - x_hat * (g * x_hat).mean(axis=axes, keepdims=True) / rms  # the path through rms
    ### END SOLUTION
    return dx, dgamma

# %% [tests] id=test_rms_backward_dx

# %% [tests] id=test_rms_backward_dgamma

# %% [markdown]
# ## Check your backward pass numerically
#
# Not graded: compare your analytic gradients with centred differences of
# `sum(rmsnorm_forward(x, gamma)[0] * dout)` (`numerical_gradient` and `rel_error` as in
# assignment 3, written out here so that this notebook stands alone), on an `(N, T, D)` input
# normalized over its last two axes. Both relative errors should be about 1e-7 or smaller.

# %%
def numerical_gradient(f, x, dout, h=1e-5):
    """Centred differences of sum(f(x) * dout) with respect to x (x is restored)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = np.sum(f(x) * dout)
        x[i] = old - h
        down = np.sum(f(x) * dout)
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def rel_error(a, b):
    """max(|a - b| / max(1e-8, |a| + |b|))."""
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


rng = np.random.default_rng(7)
x = rng.normal(1.0, 2.0, size=(3, 4, 5))
gamma = rng.uniform(0.5, 2.0, size=(4, 5))
dout = rng.normal(size=x.shape)
try:
    _, cache = rmsnorm_forward(x, gamma)
    dx, dgamma = rmsnorm_backward(dout, cache)
    dx_num = numerical_gradient(lambda z: rmsnorm_forward(z, gamma)[0], x.copy(), dout)
    dgamma_num = numerical_gradient(lambda w: rmsnorm_forward(x, w)[0], gamma.copy(), dout)
    print(f"rel_error(dx, numerical dx) = {rel_error(dx, dx_num):.2e}")
    print(f"rel_error(dgamma, numerical dgamma) = {rel_error(dgamma, dgamma_num):.2e}")
except NotImplementedError:
    print("Implement rmsnorm_forward and rmsnorm_backward first.")
