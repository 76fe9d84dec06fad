# %% [markdown]
# # Assignment 4: batch normalization at test time
#
# Chapter 4 of the book explains why a trained network cannot normalize with the statistics
# of whatever batch it is given at inference, how PyTorch keeps running averages instead
# (momentum 0.1, the unbiased variance, a cumulative average when `momentum=None`,
# `num_batches_tracked`), how Keras's momentum means the opposite, and how an eval-mode BN
# folds into the layer before it at no cost. Here you implement all of it in numpy:
#
# 1. `BatchNorm1d`, a layer with running statistics that matches `torch.nn.BatchNorm1d`
#    in float64, in training and in eval mode;
# 2. `keras_to_torch_momentum(m)`, the conversion between the two momentum conventions;
# 3. `fold_batchnorm(W, b, gamma, beta, running_mean, running_var, eps)`, BN folded into
#    the preceding Linear or convolution.
#
# "Matches torch" is meant literally: the tests compare your numbers with torch's rules to
# a relative error of 1e-9 (float64 rounding), after several calls in a row, so every
# detail of the update rules counts.
#
# Use numpy only. Calling `normlab`, torch's batch norm or torch's fusion helpers
# (`torch.nn.utils.fusion`) inside a graded function scores 0 for that test, with a message
# saying why.
#
# ## How you are graded
#
# Each test cell runs a visible test, which you can run yourself, and hidden tests on
# other inputs (other shapes, values and momenta) when your notebook is graded. A test
# cell scores its points only if every test in it passes. Total: {{total}} points.
#
# {{points_table}}
#
# Check your work with the visible tests (run all cells), then
# `nbgrader validate exercises/04-test-time/04-test-time.ipynb` from the repository root.
#
# ### What the checker recognises
#
# When a test fails because of one of these common mistakes, the message names it. The
# last column is the score of a notebook whose only mistake is that one (every test of
# `BatchNorm1d` uses the same class, so one mistake in it can fail several cells).
#
# {{mistakes_table}}
#
# Any other wrong answer gets the largest error and the index of the worst entry.
# A warning printed by your code does not cost points: it is shown as a note.

# %%
import numpy as np

# %% [markdown]
# ## 1. A BatchNorm1d layer with running statistics
#
# The layer holds, like torch's, float64 arrays of shape `(C,)`: `weight` (gamma, ones),
# `bias` (beta, zeros), `running_mean` (zeros) and `running_var` (**ones**), the counter
# `num_batches_tracked` (0) and the flag `training` (True). The tests set `weight` and
# `bias` to other values before the first call. `forward(x)` takes `x` of shape `(N, C)`
# or `(N, C, L)` (statistics per channel over axis 0, and axis 2 if present: `n` values
# per channel) and returns an array of `x`'s shape.
#
# **Training mode** (`train()`):
#
# - normalize with the batch mean and the **biased** batch variance:
#   `y = (x - mean) / sqrt(var + eps) * weight + bias`;
# - add 1 to `num_batches_tracked`, then update the running statistics with
#   `f = momentum`, or `f = 1 / num_batches_tracked` when `momentum is None` (a cumulative
#   average):
#   `running_mean = (1 - f) * running_mean + f * mean` and
#   `running_var = (1 - f) * running_var + f * var * n / (n - 1)` (the **unbiased**
#   variance);
# - a batch with one value per channel (`n == 1`) raises `ValueError`.
#
# **Eval mode** (`eval()`): normalize with `running_mean` and `running_var` (any batch
# size, one included) and change nothing.

# %% [solution] id=batchnorm1d
class BatchNorm1d:
    """Batch normalization of (N, C) or (N, C, L) input with running statistics."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.training = True
        ### BEGIN SOLUTION
        self.weight = np.ones(num_features)
        self.bias = np.zeros(num_features)
        self.running_mean = np.zeros(num_features)
        self.running_var = np.ones(num_features)
        self.num_batches_tracked = 0
        ### END SOLUTION

    def train(self, mode=True):
        """Training mode (mode=True) or eval mode (mode=False); returns self."""
        self.training = mode
        return self

    def eval(self):
        """Eval mode; returns self."""
        return self.train(False)

    def forward(self, x):
        """Normalize x of shape (N, C) or (N, C, L); returns an array of x's shape."""
        ### BEGIN SOLUTION
        x = np.asarray(x, dtype=np.float64)
        axes = (0,) + tuple(range(2, x.ndim))
        keep = (1, -1) + (1,) * (x.ndim - 2)
        if self.training:
            n = x.size // x.shape[1]
            if n == 1:
                raise ValueError("Expected more than 1 value per channel when training, "
                                 f"got input size {x.shape}")
            mean = x.mean(axis=axes)
            var = ((x - mean.reshape(keep)) ** 2).mean(axis=axes)
            self.num_batches_tracked += 1
            f = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum
            self.running_mean = (1 - f) * self.running_mean + f * mean
            self.running_var = (1 - f) * self.running_var + f * var * n / (n - 1)
        else:
            mean, var = self.running_mean, self.running_var
        x_hat = (x - mean.reshape(keep)) / np.sqrt(var.reshape(keep) + self.eps)
        return self.weight.reshape(keep) * x_hat + self.bias.reshape(keep)
        ### END SOLUTION

    def __call__(self, x):
        return self.forward(x)

# %% [tests] id=test_bn_layer_train

# %% [tests] id=test_bn_layer_cumulative

# %% [tests] id=test_bn_layer_eval

# %% [tests] id=test_bn_layer_eps

# %% [tests] id=test_bn_layer_3d

# %% [tests] id=test_bn_layer_batch_of_one

# %% [markdown]
# ## 2. Keras's momentum
#
# Keras updates `moving = m * moving + (1 - m) * batch` (default `m = 0.99`), torch
# `running = (1 - m) * running + m * batch` (default `m = 0.1`). `keras_to_torch_momentum(m)`
# returns the torch momentum that performs the same update as Keras's `m`, and raises
# `ValueError` if `m` is not in `[0, 1]`.

# %% [solution] id=keras_momentum
def keras_to_torch_momentum(m):
    """The torch momentum equivalent to Keras's momentum m."""
    ### BEGIN SOLUTION
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {m}")
    return 1.0 - m
    ### END SOLUTION

# %% [tests] id=test_keras_momentum

# %% [markdown]
# ## 3. Folding BN into the previous layer
#
# In eval mode BN is a fixed affine map per channel, `y = s * z + (beta - running_mean * s)`
# with `s = gamma / sqrt(running_var + eps)`. If `z = W x + b` comes from a Linear layer
# (`W` of shape `(out, in)`) or a convolution (`W` of shape `(out, in, kh, kw)`: output
# channel `i` is `W[i]`), the two layers are one: return the folded `(W', b')` with
# `bn(layer(x)) == layer'(x)` for every `x`. `b` may be `None` (a layer without bias, as
# before a BN): treat it as zeros.

# %% [solution] id=fold_batchnorm
def fold_batchnorm(W, b, gamma, beta, running_mean, running_var, eps=1e-5):
    """Fold an eval-mode batch norm into the layer before it; returns (W_folded, b_folded)."""
    ### BEGIN SOLUTION
    W = np.asarray(W, dtype=np.float64)
    b = np.zeros(W.shape[0]) if b is None else np.asarray(b, dtype=np.float64)
    s = gamma / np.sqrt(running_var + eps)
    W_folded = W * s.reshape((-1,) + (1,) * (W.ndim - 1))
    b_folded = (b - running_mean) * s + beta
    ### END SOLUTION
    return W_folded, b_folded

# %% [tests] id=test_fold_linear

# %% [tests] id=test_fold_conv

# %% [markdown]
# ## Measure the folding
#
# Not graded. A Linear layer followed by an eval-mode BN against the folded Linear: the
# same outputs, one layer less. (To compare your layer with torch yourself, run the same
# calls on `torch.nn.BatchNorm1d(C, momentum=None).double()` with `torch.tensor(x)`: the
# relative differences should be about 1e-15, float64 rounding, since torch adds in another
# order. This notebook does not import torch, so that grading it stays fast.)

# %%
import time

rng = np.random.default_rng(4)
try:
    W, b = rng.normal(size=(256, 256)), rng.normal(size=256)
    gamma, beta = rng.uniform(0.5, 2, 256), rng.normal(size=256)
    mean, var = rng.normal(size=256), rng.uniform(0.5, 2, 256)
    Wf, bf = fold_batchnorm(W, b, gamma, beta, mean, var)
    x = rng.normal(size=(512, 256))
    t0 = time.perf_counter()
    for _ in range(20):
        y_two = gamma * ((x @ W.T + b) - mean) / np.sqrt(var + 1e-5) + beta
    t1 = time.perf_counter()
    for _ in range(20):
        y_one = x @ Wf.T + bf
    t2 = time.perf_counter()
    print(f"Linear + BN: {(t1 - t0) / 20 * 1e3:.2f} ms, folded Linear: {(t2 - t1) / 20 * 1e3:.2f} ms,"
          f" largest difference {np.abs(y_two - y_one).max():.1e}")
except NotImplementedError:
    print("Implement fold_batchnorm first.")
