import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_classification

from normlab import data, training


def test_article002_data_is_make_classification_split():
    s = data.article002_classification(seed=3)
    X, y = make_classification(n_samples=1000, n_features=20, random_state=3)
    assert s.X_train.shape == (800, 20) and s.X_test.shape == (200, 20)
    # Same rows as scikit-learn's, just permuted between train and test.
    got = np.concatenate([s.X_train, s.X_test])
    order = np.lexsort(got.T[::-1])
    ref = X.astype(np.float32)[np.lexsort(X.astype(np.float32).T[::-1])]
    np.testing.assert_array_equal(got[order], ref)
    assert set(np.unique(np.concatenate([s.y_train, s.y_test]))) == {0, 1}


def test_digits_shape_and_scale():
    s = data.digits(seed=0)
    assert s.X_train.shape[1:] == (1, 8, 8)
    assert len(s.X_train) + len(s.X_test) == len(load_digits().images) == 1797
    assert s.X_train.max() <= 1.0 and s.X_train.min() >= 0.0


def test_bad_test_size_is_rejected():
    with pytest.raises(ValueError, match="test_size must be in"):
        data.digits(test_size=1.5)


def test_mlp_places_bn_after_linear_before_relu_without_bias():
    m = training.mlp(20, hidden=(64, 64), norm="bn")
    kinds = [type(layer).__name__ for layer in m]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert m[0].bias is None and m[3].bias is None and m[6].bias is not None
    with pytest.raises(ValueError, match="norm must be"):
        training.mlp(3, norm="gn")


def test_training_learns_a_separable_problem_and_is_reproducible():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    tensors = tuple(torch.as_tensor(a) for a in (X[:300], y[:300], X[300:], y[300:]))

    def run():
        training.seed_everything(0)
        m = training.mlp(2, hidden=(16,), norm="bn")
        return training.train(m, tensors, epochs=5, lr=1e-2, seed=1)

    h1, h2 = run(), run()
    assert h1.test_acc[-1] > 0.95
    assert h1.step_loss == h2.step_loss
    assert h1.step_loss[-1] < h1.step_loss[0]
