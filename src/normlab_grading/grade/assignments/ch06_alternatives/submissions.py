"""The student code of each recognised mistake of assignment 06-alternatives, and of submissions
that call the reference or a library routine (used by the tests).

``VARIANTS[(check, mistake)]``: edits ``(solution cell id, old text, new text)`` that turn
the solution into a submission whose only mistake is that one (one entry per ``Expected``
row); ``CHEATS``: ``(edits, failing cells or "all", routine named in the message)``.
"""

# fmt: off

NZ, NL, WN, SN, RF, RB = ("normalize", "norm_layers", "weight_norm", "spectral_norm",
                          "batch_renorm_forward", "batch_renorm_backward")
VARIANTS = {
    ("normalize_axes", "complement_axes"): [
        (NZ, "    mean = x.mean(axis=axes, keepdims=True)\n",
         "    axes = tuple(a for a in range(x.ndim) if a not in axes)\n    mean = x.mean(axis=axes, keepdims=True)\n")],
    ("normalize_axes", "unbiased"): [
        (NZ, "var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)", "var = x.var(axis=axes, ddof=1, keepdims=True)")],
    ("normalize_axes", "eps_outside_sqrt"): [(NZ, "np.sqrt(var + eps)", "(np.sqrt(var) + eps)")],
    ("layer_norm", "batch_axis_included"): [(NL, "normalize(x, (1, 2, 3), eps)", "normalize(x, (0, 1, 2, 3), eps)")],
    ("layer_norm", "last_axis_only"): [(NL, "normalize(x, (1, 2, 3), eps)", "normalize(x, (3,), eps)")],
    ("instance_norm", "normalizes_over_batch"): [(NL, "normalize(x, (2, 3), eps)", "normalize(x, (0, 2, 3), eps)")],
    ("instance_norm", "channels_included"): [(NL, "normalize(x, (2, 3), eps)", "normalize(x, (1, 2, 3), eps)")],
    ("group_norm", "no_affine"): [
        (NL, "    x_hat = normalize(grouped, (2, 3, 4), eps).reshape(N, C, H, W)\n"
             "    return gamma[None, :, None, None] * x_hat + beta[None, :, None, None]",
         "    return normalize(grouped, (2, 3, 4), eps).reshape(N, C, H, W)")],
    ("group_norm", "affine_per_group"): [
        (NL, "    x_hat = normalize(grouped, (2, 3, 4), eps).reshape(N, C, H, W)\n"
             "    return gamma[None, :, None, None] * x_hat + beta[None, :, None, None]",
         "    x_hat = normalize(grouped, (2, 3, 4), eps)\n"
         "    g, b = gamma[:num_groups], beta[:num_groups]\n"
         "    return (g[None, :, None, None, None] * x_hat + b[None, :, None, None, None]).reshape(N, C, H, W)")],
    ("group_norm", "interleaved_groups"): [
        (NL, "    grouped = x.reshape(N, num_groups, C // num_groups, H, W)\n"
             "    x_hat = normalize(grouped, (2, 3, 4), eps).reshape(N, C, H, W)",
         "    grouped = x.reshape(N, C // num_groups, num_groups, H, W)\n"
         "    x_hat = normalize(grouped, (1, 3, 4), eps).reshape(N, C, H, W)")],
    ("weight_norm_forward", "column_norm"): [
        (WN, "    norm = np.sqrt((v * v).sum(axis=1, keepdims=True))\n    return g[:, None] * v / norm",
         "    norm = np.sqrt((v * v).sum(axis=0, keepdims=True))\n    return g[:, None] * v / norm")],
    ("weight_norm_forward", "frobenius"): [
        (WN, "norm = np.sqrt((v * v).sum(axis=1, keepdims=True))", "norm = np.sqrt((v * v).sum())")],
    ("weight_norm_dg", "not_summed"): [
        (WN, "    dg = (dw * v).sum(axis=1) / norm\n", "    dg = (dw * v) / norm[:, None]\n"),
        (WN, "(g * dg / norm ** 2)[:, None] * v", "(g * (dw * v).sum(axis=1) / norm ** 3)[:, None] * v")],
    ("weight_norm_dg", "uses_w"): [
        (WN, "    dg = (dw * v).sum(axis=1) / norm\n",
         "    dg = (dw * v).sum(axis=1) / norm\n"
         "    dg_w = (dw * g[:, None] * v / norm[:, None]).sum(axis=1)\n"),
        (WN, "    return dv, dg", "    return dv, dg_w")],
    ("weight_norm_dv", "norm_constant"): [
        (WN, "dv = (g / norm)[:, None] * dw - (g * dg / norm ** 2)[:, None] * v", "dv = (g / norm)[:, None] * dw")],
    ("weight_norm_dv", "second_term_sign"): [
        (WN, "dw - (g * dg / norm ** 2)[:, None] * v", "dw + (g * dg / norm ** 2)[:, None] * v")],
    ("spectral_norm", "v_first"): [
        (SN, "        u = normalize_vector(W @ v)\n        v = normalize_vector(W.T @ u)\n",
         "        v = normalize_vector(W.T @ u)\n        u = normalize_vector(W @ v)\n")],
    ("spectral_norm", "v_not_updated"): [(SN, "        v = normalize_vector(W.T @ u)\n", "")],
    ("spectral_norm", "exact_sigma"): [
        (SN, "    sigma = float(u @ (W @ v))", "    sigma = float(np.linalg.svd(W, compute_uv=False)[0])")],
    ("spectral_norm_eps", "no_eps"): [
        (SN, "return a / max(np.sqrt(np.sum(a * a)), eps)", "return a / np.sqrt(np.sum(a * a))")],
    ("spectral_norm_eps", "eps_added"): [
        (SN, "return a / max(np.sqrt(np.sum(a * a)), eps)", "return a / (np.sqrt(np.sum(a * a)) + eps)")],
    ("renorm_forward", "not_clipped"): [
        (RF, "r = np.clip(sigma_b / sigma, 1.0 / r_max, r_max)", "r = sigma_b / sigma"),
        (RF, "d = np.clip((mu - running_mean) / sigma, -d_max, d_max)", "d = (mu - running_mean) / sigma")],
    ("renorm_forward", "swapped"): [(RF, "(x - mu) / sigma_b * r + d", "(x - mu) / sigma_b * d + r")],
    ("renorm_forward", "r_inverted"): [(RF, "np.clip(sigma_b / sigma,", "np.clip(sigma / sigma_b,")],
    ("renorm_forward", "updated_first"): [
        (RF, "    sigma = np.sqrt(running_var + eps)\n",
         "    running_mean = (1 - momentum) * running_mean + momentum * mu\n"
         "    running_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)\n"
         "    sigma = np.sqrt(running_var + eps)\n"),
        (RF, "    new_mean = (1 - momentum) * running_mean + momentum * mu\n"
             "    new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)\n",
         "    new_mean, new_var = running_mean, running_var\n")],
    ("renorm_forward", "biased_running_var"): [(RF, "momentum * var * n / (n - 1)", "momentum * var")],
    ("renorm_backward", "through_r_d"): [
        (RB, "dx = r * gamma / sigma_b * (dout - dout.mean(axis=0) - x0 * (dout * x0).mean(axis=0))",
         "dx = gamma * dout / sigma")],
    ("renorm_backward", "r_ignored"): [(RB, "dx = r * gamma / sigma_b", "dx = gamma / sigma_b")],
    ("renorm_backward", "dgamma_uses_x0"): [(RB, "dgamma = (dout * (x0 * r + d)).sum(axis=0)", "dgamma = (dout * x0).sum(axis=0)")],
}
CHEATS = [
    ([(NZ, "    mean = x.mean(axis=axes, keepdims=True)\n",
       "    import normlab\n    return normlab.norm_over_axes_forward(x, None, None, axes, (), eps)[0]\n"
       "    mean = x.mean(axis=axes, keepdims=True)\n")],
     ("test_normalize", "test_layer_norm", "test_instance_norm", "test_group_norm"),
     "normlab.groupwise.norm_over_axes_forward"),
    ([(NL, "    N, C, H, W = x.shape\n",
       "    import torch\n    t = torch.nn.functional.group_norm(torch.tensor(x), num_groups, torch.tensor(gamma), torch.tensor(beta), eps)\n"
       "    return t.numpy()\n    N, C, H, W = x.shape\n")],
     ("test_group_norm",), "torch.nn.functional.group_norm"),
    ([(SN, "    for _ in range(n_power_iterations):\n",
       "    import torch\n    lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=False).double()\n"
       "    torch.nn.utils.parametrizations.spectral_norm(lin)\n"
       "    for _ in range(n_power_iterations):\n")],
     ("test_spectral_norm", "test_spectral_norm_eps"), "torch.nn.utils.parametrizations.spectral_norm"),
    ([(WN, "    norm = np.sqrt((v * v).sum(axis=1, keepdims=True))\n",
       "    import torch\n    return torch._weight_norm(torch.tensor(v), torch.tensor(g)[:, None], 0).numpy()\n"
       "    norm = np.sqrt((v * v).sum(axis=1, keepdims=True))\n")],
     ("test_weight_norm",), "torch._weight_norm"),
]
VARIANTS.update({
    ("group_norm", "groups_over_batch"): [(NL, "normalize(grouped, (2, 3, 4), eps)", "normalize(grouped, (0, 2, 3, 4), eps)")],
    ("weight_norm_dv", "second_term_no_g"): [(WN, "(g * dg / norm ** 2)[:, None] * v", "(dg / norm ** 2)[:, None] * v")],
    ("spectral_norm", "frobenius_sigma"): [(SN, "    sigma = float(u @ (W @ v))", "    sigma = float(np.sqrt(np.sum(W * W)))")],
    ("spectral_norm", "old_vectors_returned"): [
        (SN, "    for _ in range(n_power_iterations):\n", "    u0, v0 = u, v\n    for _ in range(n_power_iterations):\n"),
        (SN, "    sigma = float(u @ (W @ v))\n", "    sigma = float(u @ (W @ v))\n    u, v = u0, v0\n")],
    ("renorm_forward", "d_sign"): [(RF, "np.clip((mu - running_mean) / sigma,", "np.clip((running_mean - mu) / sigma,")],
})
