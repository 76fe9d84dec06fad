"""normlab BatchNorm layers against torch.nn.BatchNorm1d/2d/3d (torch 2.13, float64).

float64 results are compared with ``np.array_equal`` (bit for bit) when torch runs its
FMA kernels (CPU capability AVX2 or AVX512, torch 2.13); elsewhere, and for float32, with
tolerances (see the layers' module docstring).
"""

import contextlib
import math
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tolerances import budget

from normlab import (
    BatchNorm,
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    keras_to_torch_momentum,
    torch_to_keras_momentum,
)
from normlab._torch_cpu import fma

# conftest.py sets this as torch's default dtype for this module's tests only.
TORCH_DEFAULT_DTYPE = torch.float64

TORCH_FMA_KERNELS = (torch.__version__.startswith("2.13.")
                     and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"))
bit_exact = pytest.mark.skipif(
    not TORCH_FMA_KERNELS,
    reason="bit-exactness is claimed for torch 2.13's AVX2/AVX512 CPU kernels only",
)


@contextlib.contextmanager
def torch_threads(n):
    """Run torch with n intra-op threads (restored afterwards)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)

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


def assert_same_state(ours, theirs, exact=False):
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        mine, ref = getattr(ours, name), getattr(theirs, name)
        if ref is None:
            assert mine is None, name
        elif name == "num_batches_tracked":
            assert int(mine) == int(ref)
        elif exact:
            np.testing.assert_array_equal(mine, ref.numpy(), err_msg=name)
        else:
            np.testing.assert_allclose(mine, ref.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def step_exact(ours, theirs, x, dout):
    """One forward + backward through both; output, dx, parameter gradients and buffers must
    be equal bit for bit."""
    xt = torch.tensor(x, requires_grad=True)
    theirs.zero_grad()
    yt = theirs(xt)
    yt.backward(torch.tensor(dout))
    np.testing.assert_array_equal(ours(x), yt.detach().numpy(), err_msg="output")
    np.testing.assert_array_equal(ours.backward(dout), xt.grad.numpy(), err_msg="dx")
    for grad, param, name in ((ours.grad_weight, theirs.weight, "grad_weight"),
                              (ours.grad_bias, theirs.bias, "grad_bias")):
        if param is None:
            assert grad is None
        else:
            np.testing.assert_array_equal(grad, param.grad.numpy(), err_msg=name)
    assert_same_state(ours, theirs, exact=True)


def step_both(ours, theirs, x, dout):
    """One forward + backward through both; compare output, gradients and buffers (bit for
    bit for float64 where the claim holds, else to rounding error)."""
    if TORCH_FMA_KERNELS and x.dtype == np.float64:
        return step_exact(ours, theirs, x, dout)
    xt = torch.tensor(x, requires_grad=True)
    theirs.zero_grad()
    yt = theirs(xt)
    yt.backward(torch.tensor(dout))
    out = ours(x)
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    dx = ours.backward(dout)
    # Terms of dx have size |gamma * invstd * dout|; judge the error against that size.
    gamma = 1.0 if theirs.weight is None else np.abs(theirs.weight.detach().numpy()).max()
    axes = (0,) + tuple(range(2, x.ndim))
    batch_stats = theirs.training or theirs.running_var is None
    if not batch_stats:
        var = theirs.running_var.numpy()
    else:
        var = x.var(axis=axes) if x.size else np.ones(1)
    dx_scale = gamma * np.max(1 / np.sqrt(var + theirs.eps)) * np.abs(dout).max(initial=0)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-8, atol=1e-8 * dx_scale)
    for grad, param in ((ours.grad_weight, theirs.weight), (ours.grad_bias, theirs.bias)):
        if param is None:
            assert grad is None
        else:
            want = param.grad.numpy()
            atol = 1e-8 * np.abs(dout).sum(initial=0)
            np.testing.assert_allclose(grad, want, rtol=1e-8, atol=atol)
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


# ------------------------------------------------------------------ bit for bit (float64)

# per-sample shapes (C, *L) of BatchNorm1d input: C <= 16 and C > 16 take different
# accumulation orders in torch when N <= its thread count; odd, even and short (< 4) L differ
# in the kernels' vector tails
EXACT_SAMPLES = [(5,), (19,), (3, 7), (4, 8), (6, 3), (2, 1)]


@bit_exact
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("sample", EXACT_SAMPLES, ids=lambda s: "x".join(map(str, s)))
def test_batchnorm1d_is_bit_exact_over_a_mixed_train_eval_sequence(threads, momentum, sample):
    """24 train/eval steps (N = 0, 1, 2 ... 32): outputs, dx, grads and buffers all EQUAL."""
    rng = np.random.default_rng(len(sample) * 100 + sample[0] * 7 + threads)
    c = sample[0]
    with torch_threads(threads):
        ours = BatchNorm1d(c, momentum=momentum)
        theirs = torch.nn.BatchNorm1d(c, momentum=momentum)
        randomize_affine(ours, theirs, rng)
        shift = (rng.standard_normal(c) * 5).reshape((-1,) + (1,) * (len(sample) - 1))
        for step, (training, n) in enumerate(SCHEDULE):
            ours.train(training)
            theirs.train(training)
            x = rng.standard_normal((n,) + sample) * (1 + 3 * (step % 4)) + shift
            step_exact(ours, theirs, x, rng.standard_normal(x.shape))
    assert int(ours.num_batches_tracked) == sum(t for t, _ in SCHEDULE)


@bit_exact
@pytest.mark.parametrize("kwargs", [{"affine": False}, {"bias": False},
                                    {"track_running_stats": False}, {"eps": 1e-3}])
def test_bit_exact_without_affine_bias_or_running_stats(kwargs):
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
            step_exact(ours, theirs, x, rng.standard_normal(x.shape))


@bit_exact
@pytest.mark.parametrize("kind,spatial", [(2, (3, 5)), (3, (2, 3, 3))])
def test_batchnorm2d_3d_share_the_bit_exact_kernels(kind, spatial):
    rng = np.random.default_rng(kind)
    ours, theirs = make_pair(kind, 3, momentum=0.3)
    randomize_affine(ours, theirs, rng)
    for training, n in [(True, 4), (True, 1), (False, 2), (True, 3), (False, 1)]:
        ours.train(training)
        theirs.train(training)
        x = rng.standard_normal((n, 3) + spatial) * 3 + 1
        step_exact(ours, theirs, x, rng.standard_normal(x.shape))


@bit_exact
def test_torch_threads_attribute_selects_the_thread_count_to_match():
    """torch's sums depend on its thread count; ``layer.torch_threads`` pins the one to match
    (default: torch's current count)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((37, 6)) * 4 + 2
    outs, rvs = {}, {}
    for threads in (1, 3):
        with torch_threads(threads):
            theirs = torch.nn.BatchNorm1d(6)
            outs[threads] = theirs(torch.tensor(x)).detach().numpy()
            rvs[threads] = theirs.running_var.numpy()
    assert not np.array_equal(rvs[1], rvs[3])  # the chunked sums really differ
    for threads in (1, 3):
        ours = BatchNorm1d(6)
        ours.torch_threads = threads
        with torch_threads(4 - threads):  # torch's own setting is then ignored
            np.testing.assert_array_equal(ours(x), outs[threads])
        np.testing.assert_array_equal(ours.running_var, rvs[threads])
    with pytest.raises(ValueError, match="torch_threads must be None or an int >= 1"):
        ours.torch_threads = 0
        ours(x)


@bit_exact
@pytest.mark.parametrize("cid", ["bn_layer_train", "bn_layer_cumulative", "bn_layer_eval",
                                 "bn_layer_eps", "bn_layer_3d",
                                 "bn_layer_batch_of_one"])
def test_graded_reference_is_bit_exact_on_the_graded_cases(cid):
    """The cases of assignment 04 (the reference replayed call by call, as the grader does)."""
    from normlab_grading.grade.assignments import ch04_test_time
    from normlab_grading.grade.cases import make_case

    for seed, hidden in [(None, False), (0, True), (11, True)]:
        case = make_case(cid, seed, hidden)
        ref = ch04_test_time._ref_layer(case)
        theirs = torch.nn.BatchNorm1d(case["gamma"].size, eps=case["eps"],
                                      momentum=case["momentum"])
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(case["gamma"]))
            theirs.bias.copy_(torch.tensor(case["beta"]))
            for i, mode in enumerate(case["modes"]):
                theirs.train(mode == "train")
                out = theirs(torch.tensor(case[f"x{i}"])).numpy()
                np.testing.assert_array_equal(ref[f"out{i}"], out)
        np.testing.assert_array_equal(ref["running_mean"], theirs.running_mean.numpy())
        np.testing.assert_array_equal(ref["running_var"], theirs.running_var.numpy())
        assert int(ref["num_batches_tracked"]) == int(theirs.num_batches_tracked)
        if "x_eval" in case:
            theirs.eval()
            np.testing.assert_array_equal(
                ch04_test_time._ref_single(case)["eval_out"],
                theirs(torch.tensor(case["x_eval"])).detach().numpy())


@st.composite
def exact_cases(draw):
    n = draw(st.integers(2, 40))
    c = draw(st.integers(1, 24))
    length = draw(st.sampled_from([None, 1, 2, 3, 4, 5, 8, 13]))
    shape = (n, c) if length is None else (n, c, length)
    scale = draw(st.sampled_from([1e-3, 1.0, 7.5, 1e4]))
    x0 = draw(hnp.arrays(np.float64, shape,
                         elements=st.floats(-1e3, 1e3, allow_nan=False, width=64)))
    return shape, x0 * scale


@bit_exact
@settings(max_examples=budget(30))
@given(
    exact_cases(),
    st.integers(1, 3),
    st.sampled_from([0.1, 0.5, None]),
    st.lists(st.booleans(), min_size=3, max_size=6),
    st.integers(0, 2**32 - 1),
)
def test_bit_exact_for_random_shapes_values_and_thread_counts(case, threads, momentum,
                                                              modes, seed):
    shape, x0 = case
    rng = np.random.default_rng(seed)
    c = shape[1]
    with torch_threads(threads):
        ours = BatchNorm1d(c, momentum=momentum)
        theirs = torch.nn.BatchNorm1d(c, momentum=momentum)
        randomize_affine(ours, theirs, rng)
        for i, training in enumerate([True] + modes):
            ours.train(training)
            theirs.train(training)
            x = x0 if i == 0 else x0 * rng.uniform(0.5, 2) + rng.standard_normal(shape)
            step_exact(ours, theirs, x, rng.standard_normal(shape))


_NO_FMA_SCRIPT = """
import numpy as np, torch, normlab
torch.set_default_dtype(torch.float64)
assert torch.backends.cpu.get_cpu_capability() == "DEFAULT"
rng = np.random.default_rng(0)
worst, equal = 0.0, True
for sample in [(5,), (19,), (3, 7), (4, 8)]:
    c = sample[0]
    theirs = torch.nn.BatchNorm1d(c, momentum=None)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(rng.standard_normal(c)))
        theirs.bias.copy_(torch.tensor(rng.standard_normal(c)))
    ours = normlab.BatchNorm1d.from_torch(theirs)
    for step in range(20):
        training = step % 4 != 3
        ours.train(training), theirs.train(training)
        x = rng.standard_normal((2 + step,) + sample) * (1 + step % 3) + 2
        dy = rng.standard_normal(x.shape)
        xt = torch.tensor(x, requires_grad=True)
        theirs.zero_grad()
        yt = theirs(xt)
        yt.backward(torch.tensor(dy))
        pairs = [(ours(x), yt), (ours.backward(dy), xt.grad),
                 (ours.running_mean, theirs.running_mean), (ours.running_var, theirs.running_var),
                 (ours.grad_weight, theirs.weight.grad), (ours.grad_bias, theirs.bias.grad)]
        for mine, ref in pairs:
            ref = ref.detach().numpy()
            equal &= bool(np.array_equal(mine, ref))
            worst = max(worst, float(np.max(np.abs(mine - ref)) / np.max(np.abs(ref))))
print(worst, equal)
"""


def test_without_fma_kernels_the_layer_agrees_to_rounding_error():
    """Under torch's DEFAULT (no-FMA) kernels bit-exactness is not claimed: there the layer
    agrees with torch to rounding error only (relative ~1e-13 of each quantity's scale)."""
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    result = subprocess.run([sys.executable, "-c", _NO_FMA_SCRIPT], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    worst, equal = result.stdout.split()
    assert float(worst) < 1e-12
    assert equal == "False"  # the claim is really limited to the FMA kernels


# fma, the fused multiply-add the kernels use, emulated in numpy


def _exact_fma(a, b, c):
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    try:
        return float(exact)
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


@settings(max_examples=budget(300))
@given(st.floats(allow_nan=False, allow_infinity=False),
       st.floats(allow_nan=False, allow_infinity=False),
       st.floats(allow_nan=False, allow_infinity=False))
def test_fma_is_correctly_rounded_over_the_whole_float_range(a, b, c):
    assert fma(np.array([a]), np.array([b]), np.array([c]))[0] == _exact_fma(a, b, c)


def test_fma_is_correctly_rounded_on_hard_cases():
    rng = np.random.default_rng(0)
    n = 2000
    a = rng.standard_normal(n) * 2.0 ** rng.integers(-40, 40, n)
    b = rng.standard_normal(n) * 2.0 ** rng.integers(-40, 40, n)
    cases = [
        rng.standard_normal(n) * 2.0 ** rng.integers(-90, 90, n),  # generic
        -(a * b) * (1 + rng.integers(-8, 9, n) * 2.0**-52),  # massive cancellation
        -(a * b),  # the product's rounding error alone
        a * b * 2.0 ** -rng.integers(50, 120, n),  # c below the product's last bit
    ]
    for c in cases:
        want = [_exact_fma(*t) for t in zip(a.tolist(), b.tolist(), c.tolist())]
        np.testing.assert_array_equal(fma(a, b, c), want)
    # exact ties of the rounding: a * b + c halfway between two floats
    a2, b2 = np.full(4, 1.0 + 2.0**-30), np.full(4, 1.0 + 2.0**-23)
    c2 = np.array([0.0, 2.0**-53, -(2.0**-53), 3.0])
    np.testing.assert_array_equal(fma(a2, b2, c2), [_exact_fma(*t) for t in zip(a2, b2, c2)])
    assert fma(1.0, 2.0, 3.0).shape == () and fma(np.ones((2, 3)), 2.0, 0.0).shape == (2, 3)


@settings(max_examples=budget(60))
@given(st.integers(0, 6), st.integers(0, 3), st.sampled_from([1.0, 1e-165, 1e152]),
       st.integers(0, 2**32 - 1))
def test_fma_chain_equals_step_by_step_fma(steps, k, scale, seed):
    """The batched accumulation the kernels use (plain adds, then one fused step, per row)."""
    from normlab._torch_cpu import _fma_chain, _seq

    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((2, steps, 3)) * scale
    plain = rng.standard_normal((steps, k, 3)) * scale**2
    acc0 = rng.standard_normal(3)
    want = acc0.copy()
    for i in range(steps):
        want = fma(a[i], b[i], _seq(plain[i], want))
    np.testing.assert_array_equal(_fma_chain(a, b, acc0, plain=plain), want)


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
    with pytest.raises(ValueError, match="eps must be finite and >= 0"):
        BatchNorm1d(3, eps=-1.0)
    with pytest.raises(TypeError, match="affine must be a bool"):
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
