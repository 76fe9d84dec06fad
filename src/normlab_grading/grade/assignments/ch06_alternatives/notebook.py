# %% [markdown]
# # Assignment 6: the alternatives to batch normalization
#
# Chapter 6 of the book covers what came after batch normalization: layer, instance and
# group normalization (the same operation over different axes), weight normalization,
# spectral normalization and batch renormalization. Here you implement them in numpy,
# matching PyTorch's conventions where PyTorch has the same layer:
#
# 1. `normalize(x, axes, eps)`, the one operation, then `layer_norm`, `instance_norm` and
#    `group_norm` through it;
# 2. `weight_norm(v, g)` and its gradient `weight_norm_backward(dw, v, g)`;
# 3. `spectral_norm(W, u, v, n_power_iterations, eps)` by power iteration, in torch's order;
# 4. `batch_renorm_forward(...)` and `batch_renorm_backward(dout, cache)`.
#
# The tests compare your numbers with the references to a relative error of 1e-9 (float64
# rounding). Use numpy only. Calling `normlab`, or torch's `layer_norm`, `group_norm`,
# `instance_norm`, `batch_norm`, `weight_norm` or `spectral_norm`, inside a graded function
# scores 0 for that test, with a message saying why.
#
# ## How you are graded
#
# Each test cell runs a visible test, which you can run yourself, and hidden tests on
# other inputs (other shapes, axes, group counts and settings) when your notebook is
# graded. A test cell scores its points only if every test in it passes. Total: {{total}}
# points.
#
# {{points_table}}
#
# Check your work with the visible tests (run all cells), then
# `nbgrader validate exercises/06-alternatives/06-alternatives.ipynb` from the repository
# root.
#
# ### What the checker recognises
#
# When a test fails because of one of these common mistakes, the message names it. The
# last column is the score of a notebook whose only mistake is that one, written the way
# this notebook suggests (`layer_norm`, `instance_norm` and `group_norm` call your
# `normalize`).
#
# {{mistakes_table}}
#
# Any other wrong answer gets the largest error and the index of the worst entry.
# A warning printed by your code does not cost points: it is shown as a note.

# %%
import numpy as np

# %% [markdown]
# ## 1. One operation, three normalizations
#
# `normalize(x, axes, eps)` returns `(x - mean) / sqrt(var + eps)` with the mean and the
# **biased** variance taken over the axes in the tuple `axes` (one mean and variance per
# index of the other axes). For `x` of shape `(N, C, H, W)`:
#
# | layer | statistics over | gamma, beta |
# |---|---|---|
# | layer norm | each sample: axes (1, 2, 3) | shape (C, H, W), one per element |
# | instance norm | each sample and channel: axes (2, 3) | shape (C,), per channel |
# | group norm | each sample and group of C/G consecutive channels | shape (C,), per channel |
#
# For group norm, view `x` as `(N, G, C // G, H, W)` (channels `0 .. C/G - 1` are group 0,
# and so on), normalize over axes (2, 3, 4), reshape back, then scale and shift each
# **channel**. Write the three with `normalize`.

# %% [solution] id=normalize
def normalize(x, axes, eps=1e-5):
    """(x - mean) / sqrt(var + eps), statistics over `axes` (biased variance)."""
    ### BEGIN SOLUTION
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)
    ### END SOLUTION

# %% [tests] id=test_normalize

# %% [solution] id=norm_layers
def layer_norm(x, gamma, beta, eps=1e-5):
    """Layer norm of x (N, C, H, W); gamma, beta of shape (C, H, W)."""
    ### BEGIN SOLUTION
    return gamma * normalize(x, (1, 2, 3), eps) + beta
    ### END SOLUTION


def instance_norm(x, gamma, beta, eps=1e-5):
    """Instance norm of x (N, C, H, W); gamma, beta of shape (C,)."""
    ### BEGIN SOLUTION
    x_hat = normalize(x, (2, 3), eps)
    return gamma[None, :, None, None] * x_hat + beta[None, :, None, None]
    ### END SOLUTION


def group_norm(x, gamma, beta, num_groups, eps=1e-5):
    """Group norm of x (N, C, H, W) with num_groups groups; gamma, beta of shape (C,)."""
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    grouped = x.reshape(N, num_groups, C // num_groups, H, W)
    x_hat = normalize(grouped, (2, 3, 4), eps).reshape(N, C, H, W)
    return gamma[None, :, None, None] * x_hat + beta[None, :, None, None]
    ### END SOLUTION

# %% [tests] id=test_layer_norm

# %% [tests] id=test_instance_norm

# %% [tests] id=test_group_norm

# %% [markdown]
# ## 2. Weight normalization
#
# A Linear weight `w` of shape `(out, in)` is reparametrized as `w_i = g_i * v_i / ||v_i||`
# for each output row `i` (torch's `weight_norm(module, dim=0)`), with `v` of shape
# `(out, in)` and `g` of shape `(out,)`. Given the upstream gradient `dw`, the gradients are
# `dg_i = sum_j dw_ij v_ij / ||v_i||` and
# `dv_i = (g_i / ||v_i||) dw_i - (g_i dg_i / ||v_i||**2) v_i`.
# Return `w`, and `(dv, dg)` with the shapes of `v` and `g`.

# %% [solution] id=weight_norm
def weight_norm(v, g):
    """w = g * v / ||v||, one norm per output row of v (out, in); g of shape (out,)."""
    ### BEGIN SOLUTION
    norm = np.sqrt((v * v).sum(axis=1, keepdims=True))
    return g[:, None] * v / norm
    ### END SOLUTION


def weight_norm_backward(dw, v, g):
    """Gradients (dv, dg) of the loss given dw = dL/dw."""
    ### BEGIN SOLUTION
    norm = np.sqrt((v * v).sum(axis=1))
    dg = (dw * v).sum(axis=1) / norm
    dv = (g / norm)[:, None] * dw - (g * dg / norm ** 2)[:, None] * v
    ### END SOLUTION
    return dv, dg

# %% [tests] id=test_weight_norm

# %% [tests] id=test_weight_norm_dg

# %% [tests] id=test_weight_norm_dv

# %% [markdown]
# ## 3. Spectral normalization by power iteration
#
# Spectral norm divides a weight `W` (here a matrix `(h, w)`) by an estimate `sigma` of its
# largest singular value, kept up to date by power iteration on two vectors `u` (h,) and
# `v` (w,) that persist between calls. torch's training-mode forward runs, `n` times,
#
#     u = normalize(W @ v)
#     v = normalize(W.T @ u)
#
# in this order (u first, from the stored v), with `normalize(a) = a / max(||a||, eps)`;
# then `sigma = u @ (W @ v)`. Return `(W / sigma, u, v, sigma)` with the new `u` and `v`.

# %% [solution] id=spectral_norm
def spectral_norm(W, u, v, n_power_iterations=1, eps=1e-12):
    """torch's spectral norm (training mode): (W / sigma, u, v, sigma)."""
    ### BEGIN SOLUTION
    def normalize_vector(a):
        return a / max(np.sqrt(np.sum(a * a)), eps)

    for _ in range(n_power_iterations):
        u = normalize_vector(W @ v)
        v = normalize_vector(W.T @ u)
    sigma = float(u @ (W @ v))
    ### END SOLUTION
    return W / sigma, u, v, sigma

# %% [tests] id=test_spectral_norm

# %% [tests] id=test_spectral_norm_eps

# %% [markdown]
# ## 4. Batch renormalization
#
# For `x` of shape `(N, C)`, with the batch mean `mu_B`, the biased batch variance `var_B`,
# `sigma_B = sqrt(var_B + eps)` and the moving `sigma = sqrt(running_var + eps)`:
#
#     r = clip(sigma_B / sigma, 1 / r_max, r_max)
#     d = clip((mu_B - running_mean) / sigma, -d_max, d_max)
#     x0 = (x - mu_B) / sigma_B
#     out = gamma * (x0 * r + d) + beta
#
# computed with the running statistics as they were before this batch; then update them as
# torch's batch norm does, `running = (1 - momentum) * running + momentum * batch`, with the
# **unbiased** batch variance for `running_var`. Return
# `(out, r, d, new_running_mean, new_running_var)`.
#
# In the backward pass r and d are constants (stop-gradient). `cache` is the tuple
# `(x0, r, d, sigma_B, sigma, gamma)`; return `(dx, dgamma, dbeta)`, with
# `dx = r * gamma / sigma_B * (dout - mean(dout) - x0 * mean(dout * x0))` (means over the
# batch) and `dgamma = sum(dout * (x0 * r + d))`.

# %% [solution] id=batch_renorm_forward
def batch_renorm_forward(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5,
                         momentum=0.1):
    """Batch renormalization of x (N, C): (out, r, d, new_running_mean, new_running_var)."""
    ### BEGIN SOLUTION
    n = x.shape[0]
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)
    sigma_b = np.sqrt(var + eps)
    sigma = np.sqrt(running_var + eps)
    r = np.clip(sigma_b / sigma, 1.0 / r_max, r_max)
    d = np.clip((mu - running_mean) / sigma, -d_max, d_max)
    out = gamma * ((x - mu) / sigma_b * r + d) + beta
    new_mean = (1 - momentum) * running_mean + momentum * mu
    new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    ### END SOLUTION
    return out, r, d, new_mean, new_var

# %% [tests] id=test_renorm_forward

# %% [solution] id=batch_renorm_backward
def batch_renorm_backward(dout, cache):
    """Backward pass of batch_renorm_forward with r and d held constant: (dx, dgamma, dbeta)."""
    x0, r, d, sigma_b, sigma, gamma = cache
    ### BEGIN SOLUTION
    dbeta = dout.sum(axis=0)
    dgamma = (dout * (x0 * r + d)).sum(axis=0)
    dx = r * gamma / sigma_b * (dout - dout.mean(axis=0) - x0 * (dout * x0).mean(axis=0))
    ### END SOLUTION
    return dx, dgamma, dbeta

# %% [tests] id=test_renorm_backward

# %% [markdown]
# ## Check your gradients
#
# Not graded: compare `weight_norm_backward` and `batch_renorm_backward` with centred
# differences (r and d are recomputed from fixed moving statistics but held constant, as
# the stop-gradient says). Both relative errors should be about 1e-7 or smaller.

# %%
def numerical_gradient(f, x, dout, h=1e-6):
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        pos = np.sum(f(x) * dout)
        x[ix] = old - h
        neg = np.sum(f(x) * dout)
        x[ix] = old
        grad[ix] = (pos - neg) / (2 * h)
    return grad


def rel_error(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


rng = np.random.default_rng(6)
try:
    v, g, dw = rng.normal(size=(3, 5)), rng.uniform(0.5, 2, 3), rng.normal(size=(3, 5))
    dv, dg = weight_norm_backward(dw, v, g)
    print("weight norm dv:", rel_error(dv, numerical_gradient(lambda a: weight_norm(a, g), v.copy(), dw)))
    print("weight norm dg:", rel_error(dg, numerical_gradient(lambda a: weight_norm(v, a), g.copy(), dw)))
    x, gamma, beta = rng.normal(1, 2, (8, 3)), rng.uniform(0.5, 2, 3), rng.normal(size=3)
    rm, rv, dout = rng.normal(size=3), rng.uniform(1, 3, 3), rng.normal(size=(8, 3))
    _, r, d, _, _ = batch_renorm_forward(x, gamma, beta, rm, rv, 3.0, 5.0)

    def renorm_fixed(z):  # r and d frozen at their values for x
        mu, s_b = z.mean(axis=0), np.sqrt(z.var(axis=0) + 1e-5)
        return gamma * ((z - mu) / s_b * r + d) + beta

    s_b = np.sqrt(x.var(axis=0) + 1e-5)
    cache = ((x - x.mean(axis=0)) / s_b, r, d, s_b, np.sqrt(rv + 1e-5), gamma)
    dx, _, _ = batch_renorm_backward(dout, cache)
    print("batch renorm dx:", rel_error(dx, numerical_gradient(renorm_fixed, x.copy(), dout)))
except NotImplementedError:
    print("Implement the functions above first.")
