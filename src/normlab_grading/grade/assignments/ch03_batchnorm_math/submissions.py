"""The student code of each recognised mistake of assignment 03-batchnorm-math, and of submissions
that call the reference or a library routine (used by the tests).

``VARIANTS[(check, mistake)]``: edits ``(solution cell id, old text, new text)`` that turn
the solution into a submission whose only mistake is that one (one entry per ``Expected``
row); ``CHEATS``: ``(edits, failing cells or "all", routine named in the message)``.
"""

# fmt: off

VARIANTS = {
    ("bn_forward", "unbiased_variance"): [
        ("batchnorm_forward", "var = (xc ** 2).mean(axis=0)", "var = x.var(axis=0, ddof=1)")],
    ("bn_forward", "per_sample"): [
        ("batchnorm_forward", "mu = x.mean(axis=0)", "mu = x.mean(axis=1, keepdims=True)"),
        ("batchnorm_forward", "var = (xc ** 2).mean(axis=0)",
         "var = (xc ** 2).mean(axis=1, keepdims=True)")],
    ("bn_forward", "gamma_beta_swapped"): [
        ("batchnorm_forward", "out = gamma * x_hat + beta", "out = beta * x_hat + gamma")],
    ("bn_forward_eps", "eps_outside_sqrt"): [
        ("batchnorm_forward", "x_hat = xc / np.sqrt(var + eps)",
         "x_hat = xc / (np.sqrt(var) + eps)")],
    ("bn_forward_eps", "eps_ignored"): [
        ("batchnorm_forward", "x_hat = xc / np.sqrt(var + eps)", "x_hat = xc / np.sqrt(var)")],
    ("bn_backward_dx", "var_branch_missing"): [
        ("batchnorm_backward", "dxc = dxc + 2.0 / n * xc * dvar", "dxc = dxc")],
    ("bn_backward_dx", "mean_branch_missing"): [
        ("batchnorm_backward", "dx = dxc + dmu / n", "dx = dxc")],
    ("bn_backward_dx", "var_branch_sign"): [
        ("batchnorm_backward", "dstd = -dinvstd / std ** 2", "dstd = dinvstd / std ** 2")],
    ("bn_backward_dparams", "dparams_wrong_axis"): [
        ("batchnorm_backward", "dbeta = dout.sum(axis=0)", "dbeta = dout.sum(axis=1)"),
        ("batchnorm_backward", "dgamma = (dout * x_hat).sum(axis=0)",
         "dgamma = (dout * x_hat).sum(axis=1)")],
    ("bn_backward_dparams", "dgamma_uses_x"): [
        ("batchnorm_backward", "dgamma = (dout * x_hat).sum(axis=0)",
         "dgamma = (dout * x).sum(axis=0)")],
    ("bn_backward_alt_dx", "gamma_missing"): [
        ("batchnorm_backward_alt", "dx = gamma * invstd * (", "dx = invstd * (")],
    ("bn_backward_alt_dx", "var_branch_missing"): [
        ("batchnorm_backward_alt", " - x_hat * (dout * x_hat).mean(axis=0))", ")")],
    ("bn_backward_alt_dparams", "dparams_mean"): [
        ("batchnorm_backward_alt", "dbeta = dout.sum(axis=0)", "dbeta = dout.mean(axis=0)"),
        ("batchnorm_backward_alt", "dgamma = (dout * x_hat).sum(axis=0)",
         "dgamma = (dout * x_hat).mean(axis=0)")],
    ("spatial_bn_forward", "stats_over_NC"): [
        ("spatial_batchnorm",
         "    out2, cache2 = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, C), gamma, beta, eps)\n"
         "    out = out2.reshape(N, H, W, C).transpose(0, 3, 1, 2)\n"
         "    x_hat = cache2[1].reshape(N, H, W, C).transpose(0, 3, 1, 2)\n"
         "    cache = (x, x_hat, cache2[2], cache2[3], gamma, eps)",
         "    mu = x.mean(axis=(0, 1), keepdims=True)\n"
         "    var = x.var(axis=(0, 1), keepdims=True)\n"
         "    x_hat = (x - mu) / np.sqrt(var + eps)\n"
         "    out = gamma[None, :, None, None] * x_hat + beta[None, :, None, None]\n"
         "    cache = (x, x_hat, mu, var, gamma, eps)")],
    ("spatial_bn_forward", "reshape_without_transpose"): [
        ("spatial_batchnorm", "batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, C),",
         "batchnorm_forward(x.reshape(-1, C),"),
        ("spatial_batchnorm", "out = out2.reshape(N, H, W, C).transpose(0, 3, 1, 2)",
         "out = out2.reshape(N, C, H, W)"),
        ("spatial_batchnorm", "x_hat = cache2[1].reshape(N, H, W, C).transpose(0, 3, 1, 2)",
         "x_hat = cache2[1].reshape(N, C, H, W)")],
    ("spatial_bn_backward", "dparams_over_N_only"): [
        ("spatial_batchnorm", "    dx = dx2.reshape(N, H, W, C).transpose(0, 3, 1, 2)",
         "    dx = dx2.reshape(N, H, W, C).transpose(0, 3, 1, 2)\n"
         "    dgamma, dbeta = (dout * x_hat).sum(axis=0), dout.sum(axis=0)")],
    ("numerical_gradient", "forward_difference"): [
        ("gradient_check", "x[ix] = old - h", "x[ix] = old"),
        ("gradient_check", "/ (2 * h)", "/ h")],
    ("numerical_gradient", "dout_ignored"): [
        ("gradient_check", "np.sum((pos - neg) * dout)", "np.sum(pos - neg)")],
    ("numerical_gradient", "x_not_restored"): [
        ("gradient_check", "        x[ix] = old\n        grad[ix]", "        grad[ix]")],
    ("rel_error", "mean_not_max"): [("gradient_check", "float(np.max(", "float(np.mean(")],
    ("rel_error", "no_floor"): [
        ("gradient_check", "np.maximum(1e-8, np.abs(a) + np.abs(b))", "(np.abs(a) + np.abs(b))")],
}

CHEATS = [
    ([("gradient_check", "a = np.asarray(a, dtype=np.float64)\n",
       "import normlab\n    return normlab.rel_error(a, b)\n")],
     ("test_rel_error",), "normlab.gradcheck.rel_error"),
    ([("batchnorm_forward", "mu = x.mean(axis=0)\n",
       "import torch\n    t = torch.nn.functional.batch_norm(torch.tensor(x), None, None, "
       "torch.tensor(gamma), torch.tensor(beta), training=True, eps=eps)\n"
       "    mu = x.mean(axis=0)\n")],
     ("test_bn_forward", "test_bn_forward_eps", "test_spatial_forward"),
     "torch.nn.functional.batch_norm"),
]
