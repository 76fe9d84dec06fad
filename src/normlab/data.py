"""Datasets for the course: all made offline, all seeded.

- ``article002_classification``: article 002's data, ``make_classification(n_samples=1000,
  n_features=20)``, split into train and test.
- ``digits``: the 8x8 digit images bundled inside scikit-learn (1797 images), as (N, 1, 8, 8).
- ``to_tensors``: a split as torch tensors, ready for ``normlab.training.train``.

Every function takes an explicit ``seed``; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Split", "article002_classification", "digits", "to_tensors"]


@dataclass(frozen=True)
class Split:
    """A train/test split of numpy arrays: X_* (n, ...) float, y_* (n,) int."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _split(X, y, test_size: float, seed: int) -> Split:
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(X))
    n_test = int(round(len(X) * test_size))
    test, train = idx[:n_test], idx[n_test:]
    return Split(X[train], y[train], X[test], y[test])


def article002_classification(
    seed: int = 0, n_samples: int = 1000, n_features: int = 20, test_size: float = 0.2, **kwargs
) -> Split:
    """Article 002's data: ``make_classification(n_samples=1000, n_features=20)``, split.

    Features are returned UNscaled (as the article feeds them to Keras); float32 arrays.
    Extra keyword arguments go to ``sklearn.datasets.make_classification``.
    """
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n_samples, n_features=n_features, random_state=seed, **kwargs
    )
    return _split(X.astype(np.float32), y.astype(np.int64), test_size, seed)


def digits(seed: int = 0, test_size: float = 0.25, scale: bool = True) -> Split:
    """The scikit-learn digits, images (N, 1, 8, 8) float32, labels 0..9, split.

    With ``scale=True`` pixel values 0..16 are divided by 16 (no statistics are fitted, so
    nothing leaks from the test set).
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    X = d.images.astype(np.float32)[:, None, :, :]
    if scale:
        X = X / 16.0
    return _split(X, d.target.astype(np.int64), test_size, seed)


def to_tensors(split: Split):
    """The split as torch tensors (X float32, y int64): (X_train, y_train, X_test, y_test)."""
    import torch

    return tuple(
        torch.as_tensor(a) for a in (split.X_train, split.y_train, split.X_test, split.y_test)
    )
