"""normlab BatchNorm layers against torch.nn.BatchNorm1d/2d/3d (torch 2.13, float64).

The layers and torch compute the same formulas in a different order of floating-point
operations, so float64 results are compared to rounding error: outputs and gradients against
the bounds of ``tolerances`` (computed from the inputs, about 1e-15 of each quantity's scale),
running statistics against a bound accumulated over the steps of a run. float32 with plain
tolerances.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tolerances import (
    assert_close,
    batchnorm_eval_tolerances,
    budget,
    normalization_tolerances,
    running_stats_tolerances,
)

from normlab import (
    BatchNorm,
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    keras_to_torch_momentum,
    torch_to_keras_momentum,
)

# conftest.py sets this as torch's default dtype for this module's tests only.
TORCH_DEFAULT_DTYPE = torch.float64

pytestmark = pytest.mark.usefixtures("one_torch_thread")


LAYERS = {1: (BatchNorm1d, torch.nn.BatchNorm1d), 2: (BatchNorm2d, torch.nn.BatchNorm2d),
          3: (BatchNorm3d, torch.nn.BatchNorm3d)}
SPATIAL = {(1, 2): (), (1, 3): (5,), (2, 4): (3, 4), (3, 5): (2, 3, 2)}  # (kind, rank) -> spatial


def make_pair(kind=1, num_features=3, **kwargs):
    ours_cls, torch_cls = LAYERS[kind]
    return ours_cls(num_features, **kwargs), torch_cls(num_features, **kwargs)


def randomize_affine(ours, theirs, rng):
    """Give both layers the same non-trivial weight and bias."""
    with torch.no_grad():
        if theirs.weight is not None:
            theirs.weight.copy_(torch.tensor(rng.standard_normal(theirs.num_features)))
        if theirs.bias is not None:
            theirs.bias.copy_(torch.tensor(rng.standard_normal(theirs.num_features)))
    ours.load_state_dict(theirs.state_dict())


def _running_bound(theirs):
    """The rounding-error bound accumulated so far on torch's running statistics (see
    ``step_both``); zero for a module that ``step_both`` has not run."""
    c = theirs.num_features
    return getattr(theirs, "_test_running_bound", (np.zeros(c), np.zeros(c)))


def assert_same_state(ours, theirs):
    bound_mean, bound_var = _running_bound(theirs)
    for name, bound in (("running_mean", bound_mean), ("running_var", bound_var),
                        ("num_batches_tracked", None)):
        mine, ref = getattr(ours, name), getattr(theirs, name)
        if ref is None:
            assert mine is None, name
        elif name == "num_batches_tracked":
            assert int(mine) == int(ref)
        else:
            assert_close(mine, ref.numpy(), bound, name=name)


def step_both(ours, theirs, x, dout):
    """One forward + backward through both (float64): output, dx, parameter gradients and
    running statistics must agree to rounding error."""
    assert x.dtype == np.float64
    c = theirs.num_features
    batch_stats = theirs.training or theirs.running_var is None
    updates = theirs.training and theirs.track_running_stats and x.size > 0
    gamma = None if theirs.weight is None else theirs.weight.detach().numpy().copy()
    beta = None if theirs.bias is None else theirs.bias.detach().numpy().copy()
    if updates:
        tracked = int(theirs.num_batches_tracked) + 1
        factor = theirs.momentum if theirs.momentum is not None else 1.0 / tracked
        step = running_stats_tolerances(x, theirs.running_mean.numpy(),
                                        theirs.running_var.numpy(), factor)
        old_mean, old_var = _running_bound(theirs)
        theirs._test_running_bound = ((1 - factor) * old_mean + step[0],
                                      (1 - factor) * old_var + step[1])
    if batch_stats:
        tol = normalization_tolerances(x, dout, axes=(0, *range(2, x.ndim)), eps=theirs.eps,
                                       gamma=gamma, beta=beta, param_axes=(1,))
    else:
        mean_error, var_error = _running_bound(theirs)
        tol = batchnorm_eval_tolerances(x, dout, theirs.running_mean.numpy(),
                                        theirs.running_var.numpy(), theirs.eps, gamma, beta,
                                        mean_error=mean_error, var_error=var_error)
    xt = torch.tensor(x, requires_grad=True)
    theirs.zero_grad()
    yt = theirs(xt)
    yt.backward(torch.tensor(dout))
    assert_close(ours(x), yt.detach().numpy(), tol["out"], name="output")
    assert_close(ours.backward(dout), xt.grad.numpy(), tol["dx"], name="dx")
    for grad, param, key in ((ours.grad_weight, theirs.weight, "dgamma"),
                             (ours.grad_bias, theirs.bias, "dbeta")):
        if param is None:
            assert grad is None
        else:
            assert grad.shape == (c,)
            assert_close(grad, param.grad.numpy(), tol[key], name=key)
    assert_same_state(ours, theirs)


# ------------------------------------------------------------ long mixed sequences


SCHEDULE = (
    # (training, batch size): 24 steps mixing train and eval, N = 2, N = 1 in eval, empty
    [(True, 8), (True, 2), (False, 5), (True, 16), (False, 1), (True, 3), (True, 0)]
    + [(True, 4), (False, 3), (True, 7), (True, 2), (False, 8), (True, 32), (True, 5)]
    + [(False, 2), (True, 6), (True, 9), (False, 1), (True, 2), (True, 12), (False, 4)]
    + [(True, 3), (True, 10), (False, 6)]
)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("kind,rank", [(1, 2), (1, 3), (2, 4)])
def test_train_eval_sequence_matches_torch_every_step(momentum, kind, rank):
    rng = np.random.default_rng(rank * 10 + int((momentum or 0) * 100))
    ours, theirs = make_pair(kind, 3, momentum=momentum)
    randomize_affine(ours, theirs, rng)
    shift = rng.standard_normal(3) * 5
    for step, (training, n) in enumerate(SCHEDULE):
        ours.train(training)
        theirs.train(training)
        shape = (n, 3) + SPATIAL[(kind, rank)]
        channel = (-1,) + (1,) * (rank - 2)
        x = rng.standard_normal(shape) * (1 + step % 4) + shift.reshape(channel)
        step_both(ours, theirs, x, rng.standard_normal(shape))
    assert int(ours.num_batches_tracked) == sum(t for t, _ in SCHEDULE)


# per-sample shapes (C, *L) of BatchNorm1d input: few and many channels, odd, even, short L
SAMPLES = [(5,), (19,), (3, 7), (4, 8), (6, 3), (2, 1)]


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: "x".join(map(str, s)))
def test_batchnorm1d_agrees_to_rounding_over_a_mixed_train_eval_sequence(momentum, sample):
    """24 train/eval steps (N = 0, 1, 2 ... 32), large channel offsets: outputs, dx, grads
    and buffers within the rounding-error bounds at every step."""
    rng = np.random.default_rng(len(sample) * 100 + sample[0] * 7)
    c = sample[0]
    ours = BatchNorm1d(c, momentum=momentum)
    theirs = torch.nn.BatchNorm1d(c, momentum=momentum)
    randomize_affine(ours, theirs, rng)
    shift = (rng.standard_normal(c) * 5).reshape((-1,) + (1,) * (len(sample) - 1))
    for step, (training, n) in enumerate(SCHEDULE):
        ours.train(training)
        theirs.train(training)
        x = rng.standard_normal((n,) + sample) * (1 + 3 * (step % 4)) + shift
        step_both(ours, theirs, x, rng.standard_normal(x.shape))
    assert int(ours.num_batches_tracked) == sum(t for t, _ in SCHEDULE)


@pytest.mark.parametrize("kwargs", [{"affine": False}, {"bias": False},
                                    {"track_running_stats": False}, {"eps": 1e-3}])
def test_agrees_without_affine_bias_or_running_stats(kwargs):
    rng = np.random.default_rng(21)
    ours, theirs = make_pair(1, 7, **kwargs)
    randomize_affine(ours, theirs, rng)
    for training, n in SCHEDULE[:12]:
        if n < 2 and (training or not theirs.track_running_stats):
            continue
        ours.train(training)
        theirs.train(training)
        for sample in ((7,), (7, 5)):
            x = rng.standard_normal((n,) + sample) * 2 - 1
            step_both(ours, theirs, x, rng.standard_normal(x.shape))


@pytest.mark.parametrize("kind,spatial", [(2, (3, 5)), (3, (2, 3, 3))])
def test_batchnorm2d_3d_agree_to_rounding(kind, spatial):
    rng = np.random.default_rng(kind)
    ours, theirs = make_pair(kind, 3, momentum=0.3)
    randomize_affine(ours, theirs, rng)
    for training, n in [(True, 4), (True, 1), (False, 2), (True, 3), (False, 1)]:
        ours.train(training)
        theirs.train(training)
        x = rng.standard_normal((n, 3) + spatial) * 3 + 1
        step_both(ours, theirs, x, rng.standard_normal(x.shape))


def test_a_wrong_formula_is_far_outside_the_bounds():
    """The bounds are tight enough to catch a real mistake: the unbiased variance in the
    normalization (a classic one) moves the output by ~1/(2n) of its scale."""
    rng = np.random.default_rng(30)
    x = rng.standard_normal((16, 4)) * 3 + 2
    dout = rng.standard_normal(x.shape)
    theirs = torch.nn.BatchNorm1d(4)
    tol = normalization_tolerances(x, dout, axes=(0,), eps=theirs.eps, gamma=np.ones(4),
                                   beta=np.zeros(4), param_axes=(1,))
    want = theirs(torch.tensor(x)).detach().numpy()
    wrong = (x - x.mean(0)) / np.sqrt(x.var(0, ddof=1) + theirs.eps)
    with pytest.raises(AssertionError, match="elements off"):
        assert_close(wrong, want, tol["out"])
    assert np.abs(wrong - want).max() > 1e6 * tol["out"].max()


@st.composite
def random_cases(draw):
    n = draw(st.integers(2, 40))
    c = draw(st.integers(1, 24))
    length = draw(st.sampled_from([None, 1, 2, 3, 4, 5, 8, 13]))
    shape = (n, c) if length is None else (n, c, length)
    scale = draw(st.sampled_from([1e-3, 1.0, 7.5, 1e4]))
    x0 = draw(hnp.arrays(np.float64, shape,
                         elements=st.floats(-1e3, 1e3, allow_nan=False, width=64)))
    return shape, x0 * scale


@settings(max_examples=budget(30))
@given(
    random_cases(),
    st.sampled_from([0.1, 0.5, None]),
    st.lists(st.booleans(), min_size=3, max_size=6),
    st.integers(0, 2**32 - 1),
)
def test_agrees_to_rounding_for_random_shapes_and_values(case, momentum, modes, seed):
    shape, x0 = case
    rng = np.random.default_rng(seed)
    c = shape[1]
    ours = BatchNorm1d(c, momentum=momentum)
    theirs = torch.nn.BatchNorm1d(c, momentum=momentum)
    randomize_affine(ours, theirs, rng)
    for i, training in enumerate([True] + modes):
        ours.train(training)
        theirs.train(training)
        x = x0 if i == 0 else x0 * rng.uniform(0.5, 2) + rng.standard_normal(shape)
        step_both(ours, theirs, x, rng.standard_normal(shape))


@settings(max_examples=budget(15))
@given(
    st.lists(st.tuples(st.booleans(), st.integers(2, 6)), min_size=3, max_size=8),
    st.sampled_from([0.1, 0.5, None]),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_random_schedules_match_torch(schedule, momentum, affine, track, seed):
    rng = np.random.default_rng(seed)
    ours, theirs = make_pair(2, 2, momentum=momentum, affine=affine, track_running_stats=track)
    randomize_affine(ours, theirs, rng)
    for training, n in schedule:
        ours.train(training)
        theirs.train(training)
        x = rng.standard_normal((n, 2, 3, 2)) * 2 + 1
        step_both(ours, theirs, x, rng.standard_normal(x.shape))


@pytest.mark.parametrize("kind,rank", [(1, 2), (2, 4), (3, 5)])
def test_without_running_stats_uses_batch_statistics_in_eval_too(kind, rank):
    rng = np.random.default_rng(5)
    ours, theirs = make_pair(kind, 4, track_running_stats=False)
    randomize_affine(ours, theirs, rng)
    assert ours.running_mean is None and ours.running_var is None
    assert ours.num_batches_tracked is None
    for training in (True, False, True, False):
        ours.train(training)
        theirs.train(training)
        x = rng.standard_normal((3, 4) + SPATIAL[(kind, rank)]) * 3 - 1
        step_both(ours, theirs, x, rng.standard_normal(x.shape))


def test_affine_false_and_bias_false_match_torch():
    rng = np.random.default_rng(9)
    for kwargs in ({"affine": False}, {"bias": False}):
        ours, theirs = make_pair(2, 3, **kwargs)
        randomize_affine(ours, theirs, rng)
        assert (ours.weight is None) == (theirs.weight is None)
        assert ours.bias is None
        for training in (True, True, False):
            ours.train(training)
            theirs.train(training)
            x = rng.standard_normal((4, 3, 2, 2)) + 2
            step_both(ours, theirs, x, rng.standard_normal(x.shape))
        assert list(ours.state_dict()) == list(theirs.state_dict())


def test_generic_batchnorm_accepts_every_rank_like_f_batch_norm():
    rng = np.random.default_rng(2)
    for shape in [(5, 3), (4, 3, 2), (3, 3, 2, 2), (2, 3, 2, 2, 2), (2, 3, 1, 2, 1, 2)]:
        ours = BatchNorm(3, momentum=0.3)
        rm, rv = torch.zeros(3), torch.ones(3)
        x = rng.standard_normal(shape) * 2 + 3
        ref = torch.nn.functional.batch_norm(torch.tensor(x), rm, rv, training=True, momentum=0.3)
        np.testing.assert_allclose(ours(x), ref.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(ours.running_mean, rm.numpy(), rtol=1e-10)
        np.testing.assert_allclose(ours.running_var, rv.numpy(), rtol=1e-10)


def test_float32_input_keeps_float32_output_and_float64_buffers():
    rng = np.random.default_rng(4)
    ours, theirs = make_pair(1, 3)
    theirs = theirs.float()
    x = (rng.standard_normal((16, 3)) * 2 + 1).astype(np.float32)
    out = ours(x)
    ref = theirs(torch.tensor(x))
    assert out.dtype == np.float32 and ours.running_mean.dtype == np.float64
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-6)
    assert ours.backward(np.ones_like(x)).dtype == np.float32


# --------------------------------------------------------------------- edge cases


def test_empty_batch_counts_but_leaves_statistics_unchanged_like_torch():
    ours, theirs = make_pair(1, 3, momentum=None)
    for n in (6, 0, 4):
        x = np.random.default_rng(n).standard_normal((n, 3)) + 2
        assert ours(x).shape == theirs(torch.tensor(x)).shape == (n, 3)
        assert_same_state(ours, theirs)
    assert int(ours.num_batches_tracked) == 3  # the empty batch counted (f = 1/3 after it)


def test_one_value_per_channel_raises_in_training_after_counting_the_batch_like_torch():
    ours, theirs = make_pair(1, 3)
    x = np.array([[1.0, 2.0, 3.0]])
    msg = r"Expected more than 1 value per channel when training, got input size \(1, 3\)"
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        theirs(torch.tensor(x))
    with pytest.raises(ValueError, match=msg):
        ours(x)
    assert_same_state(ours, theirs)
    assert int(ours.num_batches_tracked) == 1  # torch increments before F.batch_norm checks


def test_one_value_per_channel_in_eval_uses_running_stats_like_torch():
    rng = np.random.default_rng(8)
    ours, theirs = make_pair(1, 3)
    randomize_affine(ours, theirs, rng)
    for _ in range(3):
        x = rng.standard_normal((5, 3)) * 2 + 1
        ours(x), theirs(torch.tensor(x))
    ours.eval(), theirs.eval()
    step_both(ours, theirs, np.array([[0.3, -1.2, 2.5]]), np.array([[1.0, -2.0, 0.5]]))


def test_one_value_per_channel_in_eval_without_running_stats_raises_like_torch():
    ours, theirs = make_pair(1, 3, track_running_stats=False)
    ours.eval(), theirs.eval()
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        theirs(torch.ones(1, 3))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        ours(np.ones((1, 3)))


def test_eval_backward_uses_running_invstd():
    ours = BatchNorm1d(2)
    ours.load_state_dict({"weight": np.array([2.0, -1.0]), "bias": np.array([0.5, 0.0]),
                          "running_mean": np.array([1.0, -1.0]),
                          "running_var": np.array([4.0, 0.25]), "num_batches_tracked": 7})
    ours.eval()
    dout = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    ours(np.zeros((3, 2)))
    invstd = 1 / np.sqrt(np.array([4.0, 0.25]) + 1e-5)
    expected = dout * np.array([2.0, -1.0]) * invstd
    np.testing.assert_allclose(ours.backward(dout), expected, rtol=1e-14)


# ------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kind,rank,message",
    [(1, 4, r"expected 2D or 3D input \(got 4D input\)"),
     (1, 1, r"expected 2D or 3D input \(got 1D input\)"),
     (2, 3, r"expected 4D input \(got 3D input\)"),
     (2, 5, r"expected 4D input \(got 5D input\)"),
     (3, 4, r"expected 5D input \(got 4D input\)")],
)
def test_wrong_rank_raises_torchs_message(kind, rank, message):
    ours, theirs = make_pair(kind, 3)
    shape = (2, 3, 2, 2, 2)[:rank] if rank > 1 else (3,)
    with pytest.raises(ValueError, match=message):
        theirs(torch.ones(shape))
    with pytest.raises(ValueError, match=message):
        ours(np.ones(shape))
    assert int(ours.num_batches_tracked) == 0 == int(theirs.num_batches_tracked)


def test_generic_batchnorm_rejects_rank_one():
    with pytest.raises(ValueError, match=r"expected 2D or higher input \(got 1D input\)"):
        BatchNorm(3)(np.ones(3))


def test_channel_mismatch_and_bad_input_raise():
    with pytest.raises(ValueError, match=r"expected input with 3 channels \(axis 1\)"):
        BatchNorm1d(3)(np.ones((4, 5)))
    with pytest.raises(TypeError, match="floating-point"):
        BatchNorm1d(3)(np.ones((4, 3), dtype=np.int32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        BatchNorm1d(3)(np.full((4, 3), np.nan))


def test_constructor_validation():
    with pytest.raises(ValueError, match="num_features must be >= 1"):
        BatchNorm1d(0)
    with pytest.raises(TypeError, match="num_features must be an int"):
        BatchNorm1d(3.0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\]"):
        BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        BatchNorm1d(3, eps=-1.0)
    with pytest.raises(TypeError, match="affine must be True or False"):
        BatchNorm1d(3, affine="yes")


def test_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        BatchNorm1d(3).backward(np.ones((2, 3)))


def test_train_mode_must_be_boolean_like_torch():
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        torch.nn.BatchNorm1d(3).train("x")
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        BatchNorm1d(3).train("x")
    layer = BatchNorm1d(3)
    assert layer.eval() is layer and layer.training is False
    assert layer.train() is layer and layer.training is True


# --------------------------------------------------------- state dict, resets, torch


@pytest.mark.parametrize("kwargs", [{}, {"affine": False}, {"track_running_stats": False},
                                    {"bias": False}])
def test_state_dict_keys_and_values_match_torch(kwargs):
    rng = np.random.default_rng(1)
    ours, theirs = make_pair(2, 4, **kwargs)
    randomize_affine(ours, theirs, rng)
    for _ in range(3):
        x = rng.standard_normal((3, 4, 2, 2))
        ours(x), theirs(torch.tensor(x))
    mine, ref = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(ref)
    for key in ref:
        np.testing.assert_allclose(mine[key], ref[key].numpy(), rtol=1e-10, err_msg=key)
    assert mine["num_batches_tracked"].dtype == np.int64 if "num_batches_tracked" in mine else True


def test_from_torch_copies_configuration_state_and_mode():
    rng = np.random.default_rng(6)
    theirs = torch.nn.BatchNorm2d(3, eps=1e-3, momentum=0.25)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor([0.5, 2.0, -1.0]))
    for _ in range(4):
        theirs(torch.tensor(rng.standard_normal((4, 3, 2, 2)) + 1))
    theirs.eval()
    ours = BatchNorm.from_torch(theirs)
    assert type(ours) is BatchNorm2d and not ours.training
    assert (ours.eps, ours.momentum) == (1e-3, 0.25)
    assert_same_state(ours, theirs)
    x = rng.standard_normal((1, 3, 3, 3))
    expected = theirs(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(ours(x), expected, rtol=1e-10, atol=1e-10)
    assert type(BatchNorm.from_torch(torch.nn.BatchNorm3d(2))) is BatchNorm3d
    float32 = BatchNorm1d.from_torch(torch.nn.BatchNorm1d(2, dtype=torch.float32))
    assert float32.running_var.dtype == np.float64


def test_from_torch_rejects_other_modules():
    with pytest.raises(TypeError, match="expected a torch BatchNorm module, got Linear"):
        BatchNorm.from_torch(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="BatchNorm2d.from_torch needs torch.nn.BatchNorm2d"):
        BatchNorm2d.from_torch(torch.nn.BatchNorm1d(2))


def test_load_state_dict_errors_use_torchs_wording():
    theirs_sd = torch.nn.BatchNorm1d(3).state_dict()
    del theirs_sd["running_mean"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "running_mean"'):
        torch.nn.BatchNorm1d(3).load_state_dict(theirs_sd)
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "running_mean"'):
        BatchNorm1d(3).load_state_dict(theirs_sd)
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        BatchNorm1d(3).load_state_dict(torch.nn.BatchNorm1d(4).state_dict())
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "extra"'):
        BatchNorm1d(3).load_state_dict({**BatchNorm1d(3).state_dict(), "extra": np.ones(1)})
    layer = BatchNorm1d(3)
    result = layer.load_state_dict({"weight": np.full(3, 2.0)}, strict=False)
    assert result.missing_keys == ["bias", "running_mean", "running_var", "num_batches_tracked"]
    np.testing.assert_array_equal(layer.weight, 2.0)


def test_reset_running_stats_and_parameters_match_torch():
    rng = np.random.default_rng(12)
    ours, theirs = make_pair(1, 3)
    randomize_affine(ours, theirs, rng)
    for _ in range(2):
        x = rng.standard_normal((4, 3)) + 1
        ours(x), theirs(torch.tensor(x))
    ours.reset_running_stats(), theirs.reset_running_stats()
    assert_same_state(ours, theirs)
    np.testing.assert_allclose(ours.weight, theirs.weight.detach().numpy())
    ours.reset_parameters(), theirs.reset_parameters()
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], value.numpy())


# ------------------------------------------------------------------------ momentum


def test_momentum_conversion_matches_a_keras_style_update():
    rng = np.random.default_rng(13)
    keras_m = 0.9
    theirs = torch.nn.BatchNorm1d(2, momentum=keras_to_torch_momentum(keras_m))
    moving_mean = np.zeros(2)
    for _ in range(5):
        x = rng.standard_normal((8, 2)) + 3
        theirs(torch.tensor(x))
        moving_mean = moving_mean * keras_m + x.mean(axis=0) * (1 - keras_m)  # Keras's rule
    np.testing.assert_allclose(theirs.running_mean.numpy(), moving_mean, rtol=1e-12)


def test_momentum_conversion_values_and_validation():
    assert keras_to_torch_momentum(0.99) == pytest.approx(0.01)
    assert torch_to_keras_momentum(0.1) == pytest.approx(0.9)
    assert torch_to_keras_momentum(keras_to_torch_momentum(0.75)) == pytest.approx(0.75)
    assert keras_to_torch_momentum(0) == 1.0 and torch_to_keras_momentum(1) == 0.0
    for bad in (-0.1, 1.01, float("nan")):
        with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\]"):
            keras_to_torch_momentum(bad)
        with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\]"):
            torch_to_keras_momentum(bad)
    with pytest.raises(TypeError, match="must be a real number"):
        keras_to_torch_momentum("0.9")
