# %% [markdown]
# # Assignment 3: the mathematics of batch normalization
#
# Chapter 3 of the book derives batch normalization's forward pass in training mode, its
# computational graph and its backward pass, and checks the gradients numerically. Here you
# implement all of it in numpy (CS231n's functional style):
#
# 1. `batchnorm_forward(x, gamma, beta, eps=1e-5)` for `x` of shape `(N, D)`;
# 2. `batchnorm_backward(dout, cache)`, staged: node by node through the graph;
# 3. `batchnorm_backward_alt(dout, cache)`, the same gradients in closed form;
# 4. `spatial_batchnorm_forward` / `spatial_batchnorm_backward` for images `(N, C, H, W)`;
# 5. `numerical_gradient(f, x, dout, h=1e-5)` and `rel_error(a, b)` for gradient checks.
#
# **The cache.** Every forward pass returns `(out, cache)` with
# `cache = (x, x_hat, mu, var, gamma, eps)`: the input, the normalized input, the batch
# mean and the biased batch variance (shape `(D,)`, or `(C,)` for images), gamma and eps.
# The tests give your backward functions a cache in exactly this layout, so a mistake in a
# forward pass does not also cost you the backward points.
#
# Use numpy only. Calling `normlab` or torch's batch norm (or any library normalization
# routine) inside a graded function scores 0 for that test, with a message saying why.
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
# `nbgrader validate exercises/03-batchnorm-math/03-batchnorm-math.ipynb` from the
# repository root.
#
# ### What the checker recognises
#
# When a test fails because of one of these common mistakes, the message names it. The
# last column is the score of a notebook whose only mistake is that one, written the way
# this notebook suggests (the spatial functions reuse `batchnorm_forward` and
# `batchnorm_backward_alt` on the reshaped data).
#
# {{mistakes_table}}
#
# Any other wrong answer gets the largest error and the index of the worst entry.
# A warning printed by your code does not cost points: it is shown as a note.

# %%
import numpy as np

# %% [markdown]
# ## 1. Forward pass (training mode)
#
# For `x` of shape `(N, D)`: `mu` and `var` are each feature's batch mean and **biased**
# batch variance (divide by `N`), `x_hat = (x - mu) / sqrt(var + eps)` and
# `out = gamma * x_hat + beta`. Return `(out, cache)` with
# `cache = (x, x_hat, mu, var, gamma, eps)`.

# %% [solution] id=batchnorm_forward
def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Training-mode batch norm of x (N, D); returns (out, cache)."""
    ### BEGIN SOLUTION
    mu = x.mean(axis=0)
    xc = x - mu
    var = (xc ** 2).mean(axis=0)
    x_hat = xc / np.sqrt(var + eps)
    out = gamma * x_hat + beta
    cache = (x, x_hat, mu, var, gamma, eps)
    ### END SOLUTION
    return out, cache

# %% [tests] id=test_bn_forward

# %% [tests] id=test_bn_forward_eps

# %% [markdown]
# ## 2. Backward pass, staged
#
# Walk the graph `mu = mean(x)`, `xc = x - mu`, `var = mean(xc**2)`,
# `std = sqrt(var + eps)`, `invstd = 1 / std`, `x_hat = xc * invstd`,
# `out = gamma * x_hat + beta` backwards, one node at a time. `x` reaches the loss along
# three paths (directly through `xc`, through `mu`, through `var`): each contributes to
# `dx`. Return `(dx, dgamma, dbeta)` with shapes `(N, D)`, `(D,)`, `(D,)`.

# %% [solution] id=batchnorm_backward
def batchnorm_backward(dout, cache):
    """Staged backward pass of batchnorm_forward: (dx, dgamma, dbeta)."""
    x, x_hat, mu, var, gamma, eps = cache
    ### BEGIN SOLUTION
    n = x.shape[0]
    xc = x - mu
    std = np.sqrt(var + eps)
    invstd = 1.0 / std
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dxc = dx_hat * invstd                      # path through xc directly
    dinvstd = (dx_hat * xc).sum(axis=0)
    dstd = -dinvstd / std ** 2
    dvar = 0.5 * dstd / std
    dxc = dxc + 2.0 / n * xc * dvar            # path through var
    dmu = -dxc.sum(axis=0)
    dx = dxc + dmu / n                         # path through mu
    ### END SOLUTION
    return dx, dgamma, dbeta

# %% [tests] id=test_bn_backward_dx

# %% [tests] id=test_bn_backward_dparams

# %% [markdown]
# ## 3. Backward pass, closed form
#
# Simplify the staged gradient on paper: with means over the batch,
# `dx = gamma / sqrt(var + eps) * (dout - mean(dout) - x_hat * mean(dout * x_hat))`.

# %% [solution] id=batchnorm_backward_alt
def batchnorm_backward_alt(dout, cache):
    """Closed-form backward pass of batchnorm_forward: (dx, dgamma, dbeta)."""
    x, x_hat, mu, var, gamma, eps = cache
    ### BEGIN SOLUTION
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    invstd = 1.0 / np.sqrt(var + eps)
    dx = gamma * invstd * (dout - dout.mean(axis=0) - x_hat * (dout * x_hat).mean(axis=0))
    ### END SOLUTION
    return dx, dgamma, dbeta

# %% [tests] id=test_bn_backward_alt_dx

# %% [tests] id=test_bn_backward_alt_dparams

# %% [markdown]
# ## 4. Spatial batch normalization
#
# For images `x` of shape `(N, C, H, W)` each **channel** has one mean and variance, over
# `N`, `H` and `W`; `gamma` and `beta` have shape `(C,)`. Reuse your `(N, D)` functions:
# move the channel axis last and flatten, `x.transpose(0, 2, 3, 1).reshape(-1, C)`, then
# undo both steps on the result. The cache has the same layout as before, with `x` and
# `x_hat` of shape `(N, C, H, W)` and `mu`, `var` of shape `(C,)`.

# %% [solution] id=spatial_batchnorm
def spatial_batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Batch norm per channel of x (N, C, H, W); returns (out, cache)."""
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    out2, cache2 = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, C), gamma, beta, eps)
    out = out2.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    x_hat = cache2[1].reshape(N, H, W, C).transpose(0, 3, 1, 2)
    cache = (x, x_hat, cache2[2], cache2[3], gamma, eps)
    ### END SOLUTION
    return out, cache


def spatial_batchnorm_backward(dout, cache):
    """Backward pass of spatial_batchnorm_forward: (dx, dgamma, dbeta)."""
    x, x_hat, mu, var, gamma, eps = cache
    ### BEGIN SOLUTION
    N, C, H, W = dout.shape

    def rows(a):
        return a.transpose(0, 2, 3, 1).reshape(-1, C)

    dx2, dgamma, dbeta = batchnorm_backward_alt(rows(dout), (rows(x), rows(x_hat), mu, var, gamma, eps))
    dx = dx2.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    ### END SOLUTION
    return dx, dgamma, dbeta

# %% [tests] id=test_spatial_forward

# %% [tests] id=test_spatial_backward

# %% [markdown]
# ## 5. Gradient checking
#
# `numerical_gradient(f, x, dout, h=1e-5)` returns the gradient of `sum(f(x) * dout)` with
# respect to `x` by **centred** differences: for each entry `i`,
# `(sum(f(x + h e_i) * dout) - sum(f(x - h e_i) * dout)) / (2h)`. Change `x` in place one
# entry at a time (`f` reads it) and put each entry back afterwards.
# `rel_error(a, b)` returns `max(|a - b| / max(1e-8, |a| + |b|))` as a float: about 1e-7
# or less means the gradients agree.

# %% [solution] id=gradient_check
def numerical_gradient(f, x, dout, h=1e-5):
    """Centred-difference gradient of sum(f(x) * dout) with respect to x."""
    ### BEGIN SOLUTION
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), dtype=np.float64)
        x[ix] = old - h
        neg = np.array(f(x), dtype=np.float64)
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * dout) / (2 * h)
    ### END SOLUTION
    return grad


def rel_error(a, b):
    """Largest entrywise relative error between arrays a and b."""
    ### BEGIN SOLUTION
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
    ### END SOLUTION

# %% [tests] id=test_numerical_gradient

# %% [tests] id=test_rel_error

# %% [markdown]
# ## Check your backward passes
#
# Not graded: compare your analytic gradients with numerical ones. All three relative
# errors should be about 1e-7 or smaller.

# %%
rng = np.random.default_rng(1)
x = rng.normal(2.0, 3.0, size=(8, 4))
gamma, beta = rng.uniform(0.5, 2.0, 4), rng.normal(size=4)
dout = rng.normal(size=(8, 4))
try:
    _, cache = batchnorm_forward(x, gamma, beta)
    dx_num = numerical_gradient(lambda z: batchnorm_forward(z, gamma, beta)[0], x.copy(), dout)
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        dx, dgamma, dbeta = backward(dout, cache)
        print(f"{backward.__name__}: rel_error(dx, numerical dx) = {rel_error(dx, dx_num):.2e}")
except NotImplementedError:
    print("Implement the functions above first.")
