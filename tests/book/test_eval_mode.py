"""normlab_book.eval_mode: the train/eval bugs and what freezing BN means."""

import math

import pytest
import torch

from normlab_book.eval_mode import (
    accuracy_in_train_mode,
    finetune,
    freeze_bn,
    prediction_spread,
    train_bn_mlp,
)
from normlab_book.running_stats import bn_modules
from normlab.training import mlp


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(64, 20, generator=g)
    y = (X[:, 0] > 0).long()
    return X, y


def _model(seed=0):
    torch.manual_seed(seed)
    return mlp(20, (16, 16), 1, norm="bn").eval()


def test_accuracy_in_train_mode_uses_batch_statistics_and_leaves_model_alone():
    X, y = _data()
    model = _model()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert math.isnan(accuracy_in_train_mode(model, X, y, 1))
    acc = accuracy_in_train_mode(model, X, y, batch_size=64, order="sorted")
    # One batch = the whole set: identical to running the model in train mode on X.
    m = mlp(20, (16, 16), 1, norm="bn")
    m.load_state_dict(state)
    m.train()
    with torch.no_grad():
        expected = ((m(X)[:, 0] > 0).long() == y).float().mean().item()
    assert acc == pytest.approx(expected)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert not model.training
    with pytest.raises(ValueError):
        accuracy_in_train_mode(model, X, y, 8, order="random")


def test_prediction_spread_varies_in_train_mode_only():
    X, _ = _data()
    probs, p_eval = prediction_spread(_model(), X[0], X[1:], batch_size=4, n_batches=20)
    assert probs.shape == (20,)
    assert probs.std() > 1e-3
    assert 0.0 < p_eval < 1.0
    model = _model()
    _, p_eval = prediction_spread(model, X[0], X[1:], batch_size=4, n_batches=20)
    with torch.no_grad():
        expected = torch.sigmoid(model(X[:1])[0, 0]).item()
    assert p_eval == pytest.approx(expected)


def test_freeze_requires_grad_does_not_freeze_running_stats():
    X, _ = _data()
    model = _model()
    freeze_bn(model, "requires_grad")
    model.train()
    bn = bn_modules(model)[0]
    before = bn.running_mean.clone()
    model(X)
    assert bn.training and not bn.weight.requires_grad
    assert not torch.equal(bn.running_mean, before)
    freeze_bn(model, "eval")
    before = bn.running_mean.clone()
    model(X)
    assert torch.equal(bn.running_mean, before)
    model.train()  # the classic trap: this switches BN back to training mode
    assert bn.training


def test_finetune_modes():
    X, y = _data(1)
    model = _model(1)
    res = {mode: finetune(model, X, y, bn=mode, steps=5, batch_size=16) for mode in
           ("train", "requires_grad", "eval")}
    assert res["train"]["running_mean_change"] > 0 and res["train"]["gamma_change"] > 0
    assert res["requires_grad"]["gamma_change"] == 0 and res["requires_grad"]["beta_change"] == 0
    assert res["requires_grad"]["running_mean_change"] > 0
    for key in ("running_mean_change", "running_var_change", "gamma_change", "beta_change"):
        assert res["eval"][key] == 0.0
    with pytest.raises(ValueError):
        finetune(model, X, y, bn="frozen")


def test_train_bn_mlp_learns_article002_data():
    model, data = train_bn_mlp(seed=0, epochs=1)
    assert not model.training
    X_test, y_test = data[2], data[3]
    with torch.no_grad():
        acc = ((model(X_test)[:, 0] > 0).long() == y_test).float().mean().item()
    assert acc > 0.7


def test_train_bn_mlp_without_norm_has_no_bn_and_rejects_other_norms():
    model, data = train_bn_mlp(seed=0, epochs=1, norm=None)
    assert not bn_modules(model)
    assert all(l.bias is not None for l in model if isinstance(l, torch.nn.Linear))
    with torch.no_grad():
        acc = ((model(data[2])[:, 0] > 0).long() == data[3]).float().mean().item()
    assert acc > 0.7
    with pytest.raises(ValueError, match="norm must be 'bn' or None"):
        train_bn_mlp(seed=0, epochs=1, norm="ln")


def test_train_bn_mlp_after_activation_is_article002s_keras_order():
    model, data = train_bn_mlp(seed=0, epochs=1, placement="after")
    kinds = [type(l).__name__ for l in model]
    assert kinds == ["Linear", "ReLU", "BatchNorm1d", "Linear", "ReLU", "BatchNorm1d", "Linear"]
    assert model[0].bias is not None and model[3].bias is not None
    # BN after the ReLU: in eval mode, the first BN layer's input is nonnegative
    with torch.no_grad():
        h = model[1](model[0](data[2]))
    assert h.min() >= 0
    with torch.no_grad():
        acc = ((model(data[2])[:, 0] > 0).long() == data[3]).float().mean().item()
    assert acc > 0.7
    with pytest.raises(ValueError, match="placement"):
        train_bn_mlp(seed=0, epochs=1, placement="middle")
