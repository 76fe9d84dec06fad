"""normlab.scaling against independent ground truth: scikit-learn, scipy.stats and torch."""

import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn import preprocessing as skp

from normlab import MinMaxScaler, NotFittedError, StandardScaler, min_max_scale, zscore

FAST = settings()

ANY_FLOAT = st.one_of(
    st.floats(-1e3, 1e3, allow_subnormal=False),
    st.sampled_from([0.0, 1.0, -2.5, 0.1, 1e-3]),
)
# Multiples of 1/8: a non-constant column then has a spread far above rounding error, so
# every "is this column constant?" rule agrees.
EIGHTHS = st.integers(-8000, 8000).map(lambda k: k / 8)
RANGES = st.sampled_from([(0.0, 1.0), (-1.0, 1.0), (-3.5, 2.0), (10, 20)])


@st.composite
def matrices(draw, elements=ANY_FLOAT, min_rows=1, n_features=None):
    """(n, d) float64 arrays, some columns forced constant."""
    n = draw(st.integers(min_rows, 12))
    d = n_features if n_features is not None else draw(st.integers(1, 4))
    X = draw(hnp.arrays(np.float64, (n, d), elements=elements))
    constant = draw(hnp.arrays(np.bool_, d))
    values = draw(hnp.arrays(np.float64, d, elements=elements))
    X[:, constant] = values[constant]
    return X


@st.composite
def train_test(draw, elements=ANY_FLOAT):
    train = draw(matrices(elements))
    return train, draw(matrices(elements, n_features=train.shape[1]))


def assert_close(actual, expected, rtol=1e-12, atol=1e-9):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def assert_same_attributes(ours, theirs, names):
    for name in names:
        expected = getattr(theirs, name)
        if expected is None:
            assert getattr(ours, name) is None, name
        else:
            assert_close(getattr(ours, name), expected)


MINMAX_ATTRS = ["data_min_", "data_max_", "data_range_", "scale_", "min_",
                "n_features_in_", "n_samples_seen_"]
STANDARD_ATTRS = ["mean_", "var_", "scale_", "n_features_in_", "n_samples_seen_"]


# ----------------------------------------------------------------------------- MinMaxScaler
@FAST
@given(train_test(), RANGES)
def test_minmax_scaler_matches_sklearn(data, feature_range):
    train, test = data
    ours = MinMaxScaler(feature_range).fit(train)
    theirs = skp.MinMaxScaler(feature_range=feature_range).fit(train)
    assert_same_attributes(ours, theirs, MINMAX_ATTRS)
    assert_close(ours.transform(test), theirs.transform(test))
    assert_close(ours.fit_transform(train), theirs.fit_transform(train))
    assert_close(ours.inverse_transform(test), theirs.inverse_transform(test))


@FAST
@given(matrices(), RANGES)
def test_minmax_inverse_transform_round_trip(X, feature_range):
    scaler = MinMaxScaler(feature_range).fit(X)
    assert_close(scaler.inverse_transform(scaler.transform(X)), X, rtol=1e-9, atol=1e-9)


def test_minmax_constant_column_maps_to_range_minimum():
    X = np.array([[3.0, 0.7], [5.0, 0.7], [4.0, 0.7]])
    out = MinMaxScaler((-2.0, 5.0)).fit_transform(X)
    assert_close(out[:, 1], [-2.0, -2.0, -2.0], atol=1e-12)
    assert_close(out, skp.MinMaxScaler(feature_range=(-2.0, 5.0)).fit_transform(X))


@FAST
@given(matrices(EIGHTHS), RANGES)
def test_min_max_scale_function_matches_sklearn(X, feature_range):
    assert_close(min_max_scale(X, feature_range), skp.minmax_scale(X, feature_range=feature_range))
    column = X[:, 0]
    out = min_max_scale(column, feature_range)
    assert out.shape == column.shape
    assert_close(out, skp.minmax_scale(column, feature_range=feature_range))


# ----------------------------------------------------------------------------- StandardScaler
@FAST
@given(train_test(), st.booleans(), st.booleans())
def test_standard_scaler_matches_sklearn(data, with_mean, with_std):
    train, test = data
    ours = StandardScaler(with_mean=with_mean, with_std=with_std).fit(train)
    theirs = skp.StandardScaler(with_mean=with_mean, with_std=with_std).fit(train)
    assert_same_attributes(ours, theirs, STANDARD_ATTRS)
    assert_close(ours.transform(test), theirs.transform(test))
    assert_close(ours.fit_transform(train), theirs.fit_transform(train))
    assert_close(ours.inverse_transform(test), theirs.inverse_transform(test), rtol=1e-9)


@FAST
@given(matrices())
def test_standard_scaler_inverse_transform_round_trip(X):
    scaler = StandardScaler().fit(X)
    assert_close(scaler.inverse_transform(scaler.transform(X)), X, rtol=1e-9, atol=1e-9)


def test_standard_scaler_constant_column_gets_scale_one_and_zero_output():
    # Column 2 differs by one ulp: its variance is rounding noise, so it counts as constant.
    X = np.array([[1.0, 0.1, 1.0], [2.0, 0.1, 1.0], [4.0, 0.1, np.nextafter(1.0, 2.0)]])
    ours = StandardScaler().fit(X)
    theirs = skp.StandardScaler().fit(X)
    np.testing.assert_array_equal(ours.scale_[1:], [1.0, 1.0])
    np.testing.assert_array_equal(theirs.scale_[1:], [1.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ours.transform(X)
        z = zscore(X)
    assert np.all(np.abs(out[:, 1:]) < 1e-15)
    assert np.all(np.abs(z[:, 1:]) < 1e-15)
    assert_close(out, theirs.transform(X))


# ----------------------------------------------------------------------------- dtypes
PAIRS = [(MinMaxScaler, skp.MinMaxScaler), (StandardScaler, skp.StandardScaler)]


@pytest.mark.parametrize("ours_cls, theirs_cls", PAIRS)
def test_integer_and_bool_input_is_converted_to_float64_like_sklearn(ours_cls, theirs_cls):
    rng = np.random.default_rng(0)
    for X in (rng.integers(-50, 50, size=(9, 3)), rng.integers(0, 2, size=(9, 3)).astype(bool)):
        out = ours_cls().fit_transform(X)
        expected = theirs_cls().fit_transform(X)
        assert out.dtype == expected.dtype == np.float64
        assert_close(out, expected)


@pytest.mark.parametrize("ours_cls, theirs_cls, attr", [
    (MinMaxScaler, skp.MinMaxScaler, "scale_"),
    (MinMaxScaler, skp.MinMaxScaler, "min_"),
    (StandardScaler, skp.StandardScaler, "scale_"),
    (StandardScaler, skp.StandardScaler, "mean_"),
])
def test_float32_dtypes_match_sklearn(ours_cls, theirs_cls, attr):
    X = np.random.default_rng(1).normal(3.0, 2.0, size=(20, 3)).astype(np.float32)
    ours, theirs = ours_cls().fit(X), theirs_cls().fit(X)
    assert getattr(ours, attr).dtype == getattr(theirs, attr).dtype
    out, expected = ours.transform(X), theirs.transform(X)
    assert out.dtype == expected.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- zscore
@FAST
@given(matrices(EIGHTHS))
def test_zscore_matches_sklearn_scale_including_constant_columns(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = zscore(X)
    assert not np.any(np.isnan(out))
    assert_close(out, skp.scale(X), rtol=1e-10)
    assert_close(zscore(X[:, 0]), skp.scale(X[:, 0]), rtol=1e-10)


@FAST
@given(matrices(EIGHTHS, min_rows=3), st.sampled_from([0, 1]))
def test_zscore_matches_scipy_where_defined(X, ddof):
    varying = np.ptp(X, axis=0) > 0
    out = zscore(X, ddof=ddof)
    assert_close(out[:, varying], scipy.stats.zscore(X[:, varying], axis=0, ddof=ddof), rtol=1e-10)
    assert np.all(np.abs(out[:, ~varying]) < 1e-9)


@FAST
@given(matrices(min_rows=2), st.sampled_from([1e-5, 1e-3, 0.5]))
def test_zscore_with_eps_matches_torch_batch_norm(X, eps):
    expected = torch.nn.functional.batch_norm(
        torch.from_numpy(X), None, None, training=True, momentum=0.0, eps=eps
    ).numpy()
    assert_close(zscore(X, ddof=0, eps=eps), expected, rtol=1e-9, atol=1e-9)


@FAST
@given(matrices(min_rows=2), st.sampled_from([1e-5, 0.5]))
def test_zscore_sample_std_with_eps_matches_torch_var_mean(X, eps):
    Xt = torch.from_numpy(X)
    var, mean = torch.var_mean(Xt, dim=0, correction=1)
    expected = ((Xt - mean) / torch.sqrt(var + eps)).numpy()
    assert_close(zscore(X, ddof=1, eps=eps), expected, rtol=1e-9, atol=1e-9)


def test_zscore_gives_mean_zero_and_unit_variance_but_keeps_the_shape():
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.exponential(3.0, 500), rng.uniform(-1, 7, 500),
                         10 + rng.normal(size=500)])
    Z = zscore(X)
    assert_close(Z.mean(axis=0), 0.0, atol=1e-12)
    assert_close(Z.var(axis=0), 1.0, rtol=1e-12)
    assert_close(zscore(X, ddof=1).var(axis=0, ddof=1), 1.0, rtol=1e-12)
    # Mean 0 and variance 1 are all it guarantees: skew, kurtosis and order are unchanged.
    assert_close(scipy.stats.skew(Z), scipy.stats.skew(X), rtol=1e-9)
    assert scipy.stats.skew(Z[:, 0]) > 1.5
    assert_close(scipy.stats.kurtosis(Z), scipy.stats.kurtosis(X), rtol=1e-9)
    np.testing.assert_array_equal(np.argsort(Z, axis=0), np.argsort(X, axis=0))


@pytest.mark.parametrize("eps", [0.0, 1e-5])
@pytest.mark.parametrize("ddof", [0, 1])
def test_zscore_constant_feature_is_zero_not_nan(ddof, eps):
    X = np.array([[0.1, 1.0], [0.1, 2.0], [0.1, 6.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = zscore(X, ddof=ddof, eps=eps)
    assert np.all(np.abs(out[:, 0]) < 1e-12)
    assert np.all(np.isfinite(out))


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("cls", [MinMaxScaler, StandardScaler])
def test_use_before_fit_raises_not_fitted(cls):
    for method in ("transform", "inverse_transform"):
        words = rf"not fitted yet; call fit\(X_train\) before {method}"
        with pytest.raises(NotFittedError, match=words):
            getattr(cls(), method)(np.ones((2, 2)))
    assert issubclass(NotFittedError, ValueError)


@pytest.mark.parametrize("cls", [MinMaxScaler, StandardScaler])
def test_wrong_number_of_features_names_expected_and_got(cls):
    scaler = cls().fit(np.arange(6.0).reshape(3, 2))
    words = f"X has 3 features, but {cls.__name__} is expecting 2 features"
    with pytest.raises(ValueError, match=words):
        scaler.transform(np.ones((4, 3)))
    with pytest.raises(ValueError, match="X has 1 features"):
        scaler.inverse_transform(np.ones((4, 1)))


@pytest.mark.parametrize("cls", [MinMaxScaler, StandardScaler])
def test_scalers_reject_bad_input(cls):
    with pytest.raises(ValueError, match=r"expected 2D input .*got 1D.*reshape\(-1, 1\)"):
        cls().fit(np.arange(4.0))
    with pytest.raises(ValueError, match="expected 2D input .*got 3D"):
        cls().fit(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        cls().fit(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        cls().fit(np.ones((2, 2))).transform(np.array([[np.inf, 1.0]]))
    with pytest.raises(ValueError, match="expected at least 1 sample and 1 feature"):
        cls().fit(np.ones((0, 3)))
    with pytest.raises(ValueError, match="expected at least 1 sample and 1 feature"):
        cls().fit(np.ones((3, 0)))
    with pytest.raises(TypeError, match="dtype object"):
        cls().fit(np.array([[1.0, None]], dtype=object))
    with pytest.raises(TypeError, match="floating-point"):
        cls().fit(np.array([["a", "b"]]))


@pytest.mark.parametrize("feature_range, words", [((1.0, 0.0), "must be smaller than maximum"),
                                                  ((2, 2), "must be smaller than maximum"),
                                                  ((0.0,), "must be a pair"),
                                                  ((0.0, np.inf), "two finite numbers")])
def test_bad_feature_range(feature_range, words):
    with pytest.raises(ValueError, match=words):
        MinMaxScaler(feature_range).fit(np.ones((2, 2)))
    with pytest.raises(ValueError, match=words):
        min_max_scale(np.ones(3), feature_range)


def test_standard_scaler_flags_must_be_bool():
    with pytest.raises(TypeError, match="with_mean must be True or False"):
        StandardScaler(with_mean="yes").fit(np.ones((2, 2)))


@pytest.mark.parametrize("n, ddof", [(1, 1), (2, 2), (0, 0)])
def test_zscore_needs_more_samples_than_ddof(n, ddof):
    with pytest.raises(ValueError, match="at least"):
        zscore(np.ones((n, 2)), ddof=ddof)
    if n > 0:
        with pytest.raises(ValueError, match=f"ddof={ddof} needs at least {ddof + 1} samples"):
            zscore(np.ones(n), ddof=ddof)


@pytest.mark.parametrize("kwargs, words", [({"ddof": -1}, "ddof must be a non-negative integer"),
                                           ({"ddof": 0.5}, "ddof must be a non-negative integer"),
                                           ({"eps": -1e-5}, "eps must be a finite number >= 0"),
                                           ({"eps": np.nan}, "eps must be a finite number >= 0")])
def test_zscore_bad_parameters(kwargs, words):
    with pytest.raises(ValueError, match=words):
        zscore(np.ones((3, 2)), **kwargs)


def test_zscore_rejects_higher_rank_and_nan():
    with pytest.raises(ValueError, match="expected 1D or 2D input"):
        zscore(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        zscore(np.array([1.0, np.nan, 2.0]))
