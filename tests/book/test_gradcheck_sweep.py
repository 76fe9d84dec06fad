"""normlab_book.gradcheck_sweep: the error of a finite-difference check versus h."""

import numpy as np

from normlab_book.gradcheck_sweep import bn_gradcheck, gradcheck_error_vs_h


def test_good_h_gives_small_errors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3))
    errs = bn_gradcheck(x, np.ones(3), np.zeros(3), rng.standard_normal((6, 3)), h=1e-5)
    assert set(errs) == {"dx", "dgamma", "dbeta"}
    assert max(errs.values()) < 1e-6


def test_inputs_are_not_modified():
    rng = np.random.default_rng(1)
    x, dout = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    gamma, beta = np.array([1.0, 2.0]), np.array([0.5, -0.5])
    copies = [a.copy() for a in (x, gamma, beta, dout)]
    bn_gradcheck(x, gamma, beta, dout)
    for a, c in zip((x, gamma, beta, dout), copies):
        np.testing.assert_array_equal(a, c)


def test_v_shape_for_dx_and_no_truncation_error_for_linear_parameters():
    hs = [1e-1, 1e-5, 1e-12]
    err = gradcheck_error_vs_h(hs, seeds=[0, 1, 2])
    assert err["dx"].shape == (3, 3)
    # dx: truncation error at large h, rounding error at tiny h, both above the middle.
    assert np.all(err["dx"][:, 0] > 10 * err["dx"][:, 1])
    assert np.all(err["dx"][:, 2] > 10 * err["dx"][:, 1])
    # The output is linear in gamma and beta: the centered difference is exact up to rounding,
    # so even h = 0.1 is accurate.
    assert np.all(err["dgamma"][:, 0] < 1e-10)
    assert np.all(err["dbeta"][:, 0] < 1e-10)
