# %% [markdown]
# # Assignment 1: feature scaling, conditioning and gradient descent
#
# Chapter 1 of the book shows why features with very different ranges make gradient descent
# slow: the least-squares loss surface becomes a long narrow valley, its Hessian is badly
# conditioned, and the step size that keeps the steep direction stable crawls along the
# flat one. Here you implement the tools of that chapter:
#
# 1. `MinMaxScaler` and `StandardScaler`, with `fit`, `transform` and `inverse_transform`;
# 2. `scale_train_test`: scaling a train/test split without leaking test data;
# 3. `condition_number`: the condition number of the least-squares Hessian;
# 4. `count_gd_iterations`: how many gradient-descent steps it takes to converge.
#
# Use numpy only. Calling `normlab` or scikit-learn's scalers (`sklearn.preprocessing`)
# inside a graded function scores 0 for that test, with a message saying why.
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
# `nbgrader validate exercises/01-feature-scaling/01-feature-scaling.ipynb` from the
# repository root.
#
# ### What the checker recognises
#
# When a test fails because of one of these common mistakes, the message names it. The
# last column is the score of a notebook whose only mistake is that one (written the way
# the notebook suggests: `scale_train_test` reuses your `StandardScaler`).
#
# {{mistakes_table}}
#
# Any other wrong answer gets the largest error and the index of the worst entry.
# A warning printed by your code does not cost points: it is shown as a note.

# %%
import numpy as np

# %% [markdown]
# ## 1. Min-max scaling
#
# `MinMaxScaler(feature_range=(a, b))` learns each feature's (column's) minimum and maximum
# in `fit(X)` and maps them to `a` and `b` in `transform`:
# `a + (x - min) / (max - min) * (b - a)`. Data seen later, like a test set, is scaled with
# the **training** minimum and maximum, so it may land outside `[a, b]`: do not clip.
# `inverse_transform` undoes `transform`. `X` has shape `(n_samples, n_features)`; the
# test data here has no constant feature.

# %% [solution] id=minmax_scaler
class MinMaxScaler:
    """Scale each feature to feature_range with the minimum and maximum seen in fit."""

    def __init__(self, feature_range=(0.0, 1.0)):
        self.feature_range = feature_range

    def fit(self, X):
        """Learn the per-feature minimum and maximum of X (n_samples, n_features)."""
        ### BEGIN SOLUTION
        X = np.asarray(X, dtype=np.float64)
        self.data_min_ = X.min(axis=0)
        self.data_max_ = X.max(axis=0)
        ### END SOLUTION
        return self

    def transform(self, X):
        """Scale X with the statistics learned by fit; same shape as X."""
        ### BEGIN SOLUTION
        a, b = self.feature_range
        X = np.asarray(X, dtype=np.float64)
        return a + (X - self.data_min_) / (self.data_max_ - self.data_min_) * (b - a)
        ### END SOLUTION

    def inverse_transform(self, X):
        """Undo transform: map scaled values back to the original units."""
        ### BEGIN SOLUTION
        a, b = self.feature_range
        X = np.asarray(X, dtype=np.float64)
        return self.data_min_ + (X - a) / (b - a) * (self.data_max_ - self.data_min_)
        ### END SOLUTION

# %% [tests] id=test_minmax_fit_transform

# %% [tests] id=test_minmax_new_data

# %% [markdown]
# ## 2. Standardization
#
# `StandardScaler` learns each feature's mean and **population** standard deviation
# (divide the sum of squares by `n`, as scikit-learn does) in `fit(X)`; `transform` returns
# `(x - mean) / std`, `inverse_transform` undoes it.

# %% [solution] id=standard_scaler
class StandardScaler:
    """Standardize each feature with the mean and standard deviation seen in fit."""

    def fit(self, X):
        """Learn the per-feature mean and population standard deviation of X."""
        ### BEGIN SOLUTION
        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.sqrt(((X - self.mean_) ** 2).mean(axis=0))
        ### END SOLUTION
        return self

    def transform(self, X):
        """Standardize X with the statistics learned by fit; same shape as X."""
        ### BEGIN SOLUTION
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        ### END SOLUTION

    def inverse_transform(self, X):
        """Undo transform: x = z * std + mean."""
        ### BEGIN SOLUTION
        return np.asarray(X, dtype=np.float64) * self.scale_ + self.mean_
        ### END SOLUTION

# %% [tests] id=test_standard_fit_transform

# %% [tests] id=test_standard_new_data

# %% [markdown]
# ## 3. Scaling a train/test split
#
# `scale_train_test(X_train, X_test)` returns `(X_train_scaled, X_test_scaled)`, both
# standardized with **one** `StandardScaler` (yours) fitted on `X_train` only. Fitting on
# the test set, or on both sets together, lets test data leak into the preprocessing and
# makes the test score optimistic.

# %% [solution] id=scale_train_test
def scale_train_test(X_train, X_test):
    """Standardize a train/test split with statistics of the training set only."""
    ### BEGIN SOLUTION
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test)
    ### END SOLUTION

# %% [tests] id=test_scale_train_test

# %% [markdown]
# ## 4. The condition number of least squares
#
# For the loss `L(w) = ||X w - y||^2 / (2n)` (no intercept) the Hessian is
# `H = X^T X / n`, whatever `w` and `y` are. Its condition number
# `kappa = lambda_max / lambda_min` measures how elongated the loss surface is.
# `condition_number(X)` returns it as a float (`np.linalg.eigvalsh` gives the eigenvalues
# of a symmetric matrix in ascending order).

# %% [solution] id=condition_number
def condition_number(X):
    """lambda_max / lambda_min of the least-squares Hessian X^T X / n."""
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=np.float64)
    eigenvalues = np.linalg.eigvalsh(X.T @ X / X.shape[0])
    return float(eigenvalues[-1] / eigenvalues[0])
    ### END SOLUTION

# %% [tests] id=test_condition_number

# %% [markdown]
# ## 5. Counting gradient-descent steps
#
# `count_gd_iterations(X, y, lr, tol=1e-6, max_iter=100_000)` runs gradient descent on the
# same loss from `w = 0`: `w <- w - lr * g(w)` with `g(w) = X^T (X w - y) / n`, and returns
# the number of updates made until `||g(w_k)|| <= tol * ||g(w_0)||` (0 if `w_0` already
# satisfies it). Raise `RuntimeError` if that takes more than `max_iter` updates.
# Compare the count on raw and on standardized features to see chapter 1's point.

# %% [solution] id=count_gd_iterations
def count_gd_iterations(X, y, lr, tol=1e-6, max_iter=100_000):
    """Number of gradient-descent updates until ||g|| <= tol * ||g_0||."""
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = X.shape[0]
    w = np.zeros(X.shape[1])
    g = X.T @ (X @ w - y) / n
    threshold = tol * np.linalg.norm(g)
    k = 0
    while np.linalg.norm(g) > threshold:
        if k == max_iter:
            raise RuntimeError(f"no convergence within max_iter={max_iter} updates")
        w = w - lr * g
        g = X.T @ (X @ w - y) / n
        k += 1
    return k
    ### END SOLUTION

# %% [tests] id=test_gd_iterations
