"""One rule, one message: the same mistake gets the same error from every function of the
core (normlab.validation), and torch's running-statistics rules hold for the one update
(normlab.running_stats) that the layers, batch renorm and its torch module share."""

import numpy as np
import pytest
import torch

import normlab as nl
from normlab.running_stats import running_factor, update_moving_stats
from normlab.spectralnorm import spectral_norm

X = np.arange(12.0).reshape(4, 3) ** 1.5  # (N, C) with distinct values
ONES, ZEROS = np.ones(3), np.zeros(3)


def _message(call):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    return type(info.value), str(info.value)


def _all_same(calls):
    messages = {_message(c) for c in calls}
    assert len(messages) == 1, messages
    return messages.pop()


def test_a_bad_eps_gets_one_message_everywhere():
    for bad, kind, words in [(-1.0, ValueError, "eps must be a finite number >= 0, got -1.0"),
                             (float("nan"), ValueError, "eps must be a finite number >= 0, got nan"),
                             ("1e-5", TypeError, "eps must be a real number, got str")]:
        got = _all_same([
            lambda: nl.batchnorm_forward(X, ONES, ZEROS, bad),
            lambda: nl.batchnorm_eval_forward(X, ONES, ZEROS, ZEROS, ONES, bad),
            lambda: nl.layernorm_forward(X, ONES, ZEROS, bad),
            lambda: nl.groupnorm_forward(X, ONES, ZEROS, 1, bad),
            lambda: nl.instancenorm_forward(X[:, :, None].repeat(2, 2), eps=bad),
            lambda: nl.batchrenorm_forward(X, ONES, ZEROS, ZEROS, ONES, 1.0, 0.0, eps=bad),
            lambda: nl.rmsnorm_forward(X, ONES, bad),
            lambda: nl.BatchNorm1d(3, eps=bad),
            lambda: spectral_norm(X, np.ones(4) / 2, ONES / np.sqrt(3), eps=bad),
            lambda: nl.zscore(X, eps=bad),
        ])
        assert got == (kind, words)


def test_integer_input_is_refused_with_one_message():
    Xi = X.astype(np.int64)
    kind, words = _all_same([
        lambda: nl.batchnorm_forward(Xi, ONES, ZEROS),
        lambda: nl.layernorm_forward(Xi, ONES, ZEROS),
        lambda: nl.groupnorm_forward(Xi, ONES, ZEROS, 3),
        lambda: nl.batchrenorm_forward(Xi, ONES, ZEROS, ZEROS, ONES, 1.0, 0.0),
        lambda: nl.rmsnorm_forward(Xi, ONES),
        lambda: nl.BatchNorm1d(3)(Xi),
    ])
    assert kind is TypeError and words.startswith("x must be a floating-point array")


def test_a_momentum_outside_0_1_gets_one_message():
    kind, words = _all_same([
        lambda: nl.BatchNorm1d(3, momentum=1.5),
        lambda: nl.batchrenorm_forward(X, ONES, ZEROS, ZEROS, ONES, 1.0, 0.0, momentum=1.5),
        lambda: update_moving_stats(ZEROS, ONES, ZEROS, ONES, 4, 1.5),
    ])
    assert (kind, words) == (ValueError, "momentum must be in [0, 1], got 1.5")
    assert str(_message(lambda: nl.keras_to_torch_momentum(1.5))[1]) == (
        "keras momentum must be in [0, 1], got 1.5")


def test_a_flag_that_is_not_a_bool_gets_one_message():
    messages = {_message(lambda: nl.BatchNorm1d(3, affine="yes")),
                _message(lambda: nl.StandardScaler(with_mean="yes").fit(X)),
                _message(lambda: nl.condition_number(X, fit_intercept="yes"))}
    assert {(k, w.split(" must ")[1]) for k, w in messages} == {
        (TypeError, "be True or False, got 'yes'")}


def test_one_value_per_channel_gets_torchs_message_everywhere():
    one = X[:1]
    with pytest.raises(ValueError) as info:
        torch.nn.functional.batch_norm(torch.tensor(one), None, None, training=True)
    kind, words = _all_same([
        lambda: nl.batchnorm_forward(one, ONES, ZEROS),
        lambda: nl.batchrenorm_forward(one, ONES, ZEROS, ZEROS, ONES, 1.0, 0.0),
        lambda: nl.BatchNorm1d(3)(one),
    ])
    assert words == "Expected more than 1 value per channel when training, got input size (1, 3)"
    assert str(info.value).startswith(words.split(", got")[0])


def test_running_factor_is_torchs_exponential_average_factor():
    assert running_factor(0.3, 7) == 0.3
    assert running_factor(None, 4) == 0.25
    with pytest.raises(ValueError, match="num_batches_tracked must be >= 1"):
        running_factor(None, 0)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_the_one_update_reproduces_torch_batchnorm_buffers(momentum):
    rng = np.random.default_rng(0)
    bn = torch.nn.BatchNorm1d(3, momentum=momentum, dtype=torch.float64)
    mean, var = np.zeros(3), np.ones(3)
    for step in range(1, 5):
        x = rng.standard_normal((6 + step, 3)) * 2 + 1
        bn(torch.tensor(x))
        f = running_factor(momentum, step)
        mean, var = update_moving_stats(mean, var, x.mean(0), x.var(0), len(x), f)
    np.testing.assert_allclose(mean, bn.running_mean.numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(var, bn.running_var.numpy(), rtol=1e-14)
