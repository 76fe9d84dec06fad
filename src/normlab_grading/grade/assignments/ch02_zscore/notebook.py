# %% [markdown]
# # Assignment 2: z-score normalization and its edge cases
#
# Chapter 2 of the book derives the z-score, `z = (x - mean) / std`, computed **per feature**
# (per column of `X`, over the samples). Here you implement it, with the details that make
# the difference between a formula and a function people can rely on:
#
# - `ddof`: the variance is `sum((x - mean)**2) / (n - ddof)`. `ddof=0` (the default) is the
#   population variance (numpy's, batch norm's); `ddof=1` the sample variance (pandas', R's).
#   With `n - ddof <= 0` the variance is undefined: raise `ValueError`.
# - `eps`: added to the variance **inside** the square root, `sqrt(var + eps)`, as batch
#   norm does.
# - constant features: their standard deviation is 0. With `eps=0` a constant feature must
#   map to `0` (not NaN): divide by 1 where the standard deviation is 0.
# - a 1-D array is **one feature** with `n` values; return an array of the same shape.
#
# Use numpy only: calling `normlab`, `scipy.stats.zscore` or scikit-learn's scalers inside
# `zscore` scores 0 for that test.
#
# ## How you are graded
#
# Each test cell below runs a visible test, which you can run yourself, and hidden tests
# on other inputs (other shapes and values) when your notebook is graded. A test cell scores
# its points only if every test in it passes. Total: {{total}} points.
#
# {{points_table}}
#
# Check your work with the visible tests (run all cells), then
# `nbgrader validate exercises/02-zscore/02-zscore.ipynb` from the repository root.
#
# ### What the checker recognises
#
# When a test fails because of one of these common mistakes, the message names it. The
# last column is the score a notebook with only that mistake gets.
#
# {{mistakes_table}}
#
# Any other wrong answer gets the largest error and the index of the worst entry.
# A warning printed by your code does not cost points: it is shown as a note.

# %%
import numpy as np

# %% [markdown]
# ## `zscore(X, ddof=0, eps=0.0)`
#
# `X` has shape `(n_samples, n_features)`, or `(n_samples,)` for one feature. Return
# `(X - mean) / sqrt(var + eps)` with the mean and `var = sum((X - mean)**2) / (n - ddof)`
# of each column; same shape as `X`, dtype float64.

# %% [solution] id=zscore
def zscore(X, ddof=0, eps=0.0):
    """Z-score each feature (column) of X; a 1-D X is one feature."""
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=np.float64)
    one_feature = X.ndim == 1
    if one_feature:
        X = X[:, None]
    n = X.shape[0]
    if n - ddof <= 0:
        raise ValueError(f"zscore with ddof={ddof} needs more than {ddof} samples, got {n}")
    mean = X.mean(axis=0)
    var = ((X - mean) ** 2).sum(axis=0) / (n - ddof)
    std = np.sqrt(var + eps)
    std = np.where(std == 0, 1.0, std)  # constant feature: x - mean is 0, keep it 0
    out = (X - mean) / std
    return out[:, 0] if one_feature else out
    ### END SOLUTION

# %% [tests] id=test_zscore_basic

# %% [tests] id=test_zscore_ddof

# %% [tests] id=test_zscore_eps

# %% [tests] id=test_zscore_constant

# %% [tests] id=test_zscore_1d

# %% [tests] id=test_zscore_too_few

# %% [markdown]
# ## Try it
#
# "Mean 0, variance 1" does not change the shape of a distribution: a skewed feature stays
# skewed after the z-score. Try it on `np.random.default_rng(0).exponential(size=1000)`
# and compare the histograms (this cell is not graded).
