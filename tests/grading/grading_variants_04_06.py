"""Student code for the recognised mistakes of assignments 04-06, as edits of the solution.

The format of tests/test_grading_pipeline.py: ``VARIANTS[assignment][(check, mistake)]`` is a
list of ``(solution cell id, old text, new text)`` edits that turn the solution into a
submission whose only mistake is that one (one entry per ``Expected`` row of the
assignment's declaration); ``CHEATS[assignment]`` lists submissions that call the reference
or a library routine doing the graded job: ``(edits, failing cells, routine named in the
message)``. Used by tests/test_grading_assignments_04_06.py (in process, fast) and
tests/test_grading_pipeline_04_06.py (real nbgrader).
"""

# fmt: off

# ------------------------------------------------------------------ 04-test-time
BN = "batchnorm1d"
UPDATE = ("            self.num_batches_tracked += 1\n"
          "            f = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum\n"
          "            self.running_mean = (1 - f) * self.running_mean + f * mean\n"
          "            self.running_var = (1 - f) * self.running_var + f * var * n / (n - 1)\n")
VARIANTS_04 = {
    ("bn_layer_train", "keras_momentum"): [
        (BN, "self.running_mean = (1 - f) * self.running_mean + f * mean",
         "self.running_mean = f * self.running_mean + (1 - f) * mean"),
        (BN, "self.running_var = (1 - f) * self.running_var + f * var * n / (n - 1)",
         "self.running_var = f * self.running_var + (1 - f) * var * n / (n - 1)")],
    ("bn_layer_train", "biased_running_var"): [(BN, "+ f * var * n / (n - 1)", "+ f * var")],
    # the identity edit marks the line this mistake interacts with (with momentum=None as 0.1
    # or an off-by-one average the initial running_var matters): the pipeline test then
    # never packs it into one submission with the momentum=None mistakes
    ("bn_layer_train", "running_var_init_zero"): [
        (BN, "self.running_var = np.ones(num_features)", "self.running_var = np.zeros(num_features)"),
        (BN, "f = 1.0 / self.num_batches_tracked if", "f = 1.0 / self.num_batches_tracked if")],
    ("bn_layer_train", "no_num_batches_tracked"): [
        (BN, "            self.num_batches_tracked += 1\n", "")],
    ("bn_layer_train", "unbiased_forward"): [
        (BN, "var = ((x - mean.reshape(keep)) ** 2).mean(axis=axes)", "var = x.var(axis=axes, ddof=1)"),
        (BN, "+ f * var * n / (n - 1)", "+ f * var")],
    ("bn_layer_eps", "eps_outside_sqrt"): [
        (BN, "np.sqrt(var.reshape(keep) + self.eps)", "(np.sqrt(var.reshape(keep)) + self.eps)")],
    ("bn_layer_cumulative", "momentum_none_as_default"): [
        (BN, "f = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum",
         "f = 0.1 if self.momentum is None else self.momentum")],
    ("bn_layer_cumulative", "cumulative_off_by_one"): [
        (BN, "f = 1.0 / self.num_batches_tracked if", "f = 1.0 / (self.num_batches_tracked + 1) if")],
    ("bn_layer_eval", "batch_stats_in_eval"): [
        (BN, "            mean, var = self.running_mean, self.running_var\n",
         "            mean = x.mean(axis=axes)\n"
         "            var = ((x - mean.reshape(keep)) ** 2).mean(axis=axes)\n")],
    ("bn_layer_eval", "updates_in_eval"): [
        (BN, UPDATE, ""),
        (BN, "        x_hat = (x - mean.reshape(keep)) / np.sqrt(var.reshape(keep) + self.eps)\n",
         "        x_hat = (x - mean.reshape(keep)) / np.sqrt(var.reshape(keep) + self.eps)\n"
         "        n = x.size // x.shape[1]\n"
         "        mean = x.mean(axis=axes)\n"
         "        var = ((x - mean.reshape(keep)) ** 2).mean(axis=axes)\n"
         + UPDATE.replace("            ", "        "))],
    ("bn_layer_eps", "eps_ignored"): [
        (BN, "np.sqrt(var.reshape(keep) + self.eps)", "np.sqrt(var.reshape(keep))")],
    ("bn_layer_3d", "n_is_batch_size"): [(BN, "n = x.size // x.shape[1]", "n = x.shape[0]")],
    ("bn_layer_3d", "reshape_without_transpose"): [
        (BN, "        x = np.asarray(x, dtype=np.float64)\n",
         "        x = np.asarray(x, dtype=np.float64)\n"
         "        shape = x.shape\n"
         "        x = x.reshape(-1, shape[1])\n"),
        (BN, "        return self.weight.reshape(keep) * x_hat + self.bias.reshape(keep)",
         "        return (self.weight.reshape(keep) * x_hat + self.bias.reshape(keep)).reshape(shape)")],
    ("bn_layer_batch_of_one", "no_error_batch_of_one"): [(BN, "            if n == 1:", "            if False:")],
    ("bn_layer_batch_of_one", "wrong_exception"): [
        (BN, "raise ValueError(\"Expected more", "raise RuntimeError(\"Expected more")],
    ("bn_layer_batch_of_one", "eval_batch_of_one_raises"): [
        (BN, "        if self.training:\n            n = x.size // x.shape[1]\n",
         "        n = x.size // x.shape[1]\n"
         "        if n == 1:\n"
         "            raise ValueError(\"a batch of one\")\n"
         "        if self.training:\n")],
    ("keras_momentum", "returns_m"): [("keras_momentum", "return 1.0 - m", "return m")],
    ("keras_momentum", "no_error_invalid"): [("keras_momentum", "if not 0.0 <= m <= 1.0:", "if False:")],
    ("keras_momentum", "invalid_wrong_exception"): [
        ("keras_momentum", "raise ValueError(f\"momentum", "raise TypeError(f\"momentum")],
    ("fold_linear", "scales_columns"): [
        ("fold_batchnorm", "s.reshape((-1,) + (1,) * (W.ndim - 1))", "s.reshape((1, -1) + (1,) * (W.ndim - 2))")],
    ("fold_linear", "bias_no_shift"): [
        ("fold_batchnorm", "b_folded = (b - running_mean) * s + beta", "b_folded = b * s")],
    ("fold_linear", "bias_no_beta"): [
        ("fold_batchnorm", "b_folded = (b - running_mean) * s + beta", "b_folded = (b - running_mean) * s")],
    ("fold_linear", "bias_no_mean"): [
        ("fold_batchnorm", "b_folded = (b - running_mean) * s + beta", "b_folded = b * s + beta")],
    ("fold_linear", "bias_not_scaled"): [
        ("fold_batchnorm", "b_folded = (b - running_mean) * s + beta", "b_folded = b - running_mean * s + beta")],
    ("fold_linear", "no_sqrt"): [
        ("fold_batchnorm", "s = gamma / np.sqrt(running_var + eps)", "s = gamma / (running_var + eps)")],
}
CHEATS_04 = [
    ([(BN, "        x = np.asarray(x, dtype=np.float64)\n",
       "        import normlab\n        normlab.batchnorm_forward(np.asarray(x, dtype=np.float64), self.weight, self.bias)\n"
       "        x = np.asarray(x, dtype=np.float64)\n")],
     ("test_bn_layer_train", "test_bn_layer_cumulative", "test_bn_layer_eval", "test_bn_layer_eps",
      "test_bn_layer_3d", "test_bn_layer_batch_of_one"), "normlab.batchnorm.batchnorm_forward"),
    ([("keras_momentum", "    if not 0.0 <= m <= 1.0:",
       "    import normlab\n    return normlab.keras_to_torch_momentum(m)\n    if not 0.0 <= m <= 1.0:")],
     ("test_keras_momentum",), "normlab.momentum.keras_to_torch_momentum"),
    ([("fold_batchnorm", "    W = np.asarray(W, dtype=np.float64)\n",
       "    from torch.nn.utils.fusion import fuse_linear_bn_weights\n"
       "    import torch\n"
       "    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))\n"
       "    if np.ndim(W) == 2:\n"
       "        w, bb = fuse_linear_bn_weights(t(W), t(b), t(running_mean), t(running_var), eps, t(gamma), t(beta))\n"
       "        return w.detach().numpy(), bb.detach().numpy()\n"
       "    W = np.asarray(W, dtype=np.float64)\n")],
     ("test_fold_linear",), "torch.nn.utils.fusion.fuse_linear_bn_weights"),
]

# ------------------------------------------------------------------ 05-ics
D, GC, LG, EX = "input_drift", "gradient_change", "loss_along_gradient", "run_experiment"
VARIANTS_05 = {
    ("input_drift", "units_axis"): [(D, "mu = H.mean(axis=1)", "mu = H.mean(axis=2)"),
                                    (D, "sigma = H.std(axis=1)", "sigma = H.std(axis=2)")],
    ("input_drift", "pooled"): [(D, "mu = H.mean(axis=1)", "mu = H.mean(axis=(1, 2))[:, None]"),
                                (D, "sigma = H.std(axis=1)", "sigma = H.std(axis=(1, 2))[:, None]")],
    ("input_drift", "signed"): [(D, "np.abs(mu[-1] - mu[0]).mean()", "(mu[-1] - mu[0]).mean()"),
                                (D, "np.abs(np.diff(mu, axis=0)).mean()", "np.diff(mu, axis=0).mean()")],
    ("input_drift", "unbiased_std"): [(D, "sigma = H.std(axis=1)", "sigma = H.std(axis=1, ddof=1)")],
    ("input_drift", "rel_first_std"): [(D, "jump / float(sigma.mean())", "jump / float(sigma[0].mean())")],
    ("gradient_change_diff", "updates_target"): [(GC, "    for k in preceding:", "    for k in [target]:")],
    ("gradient_change_diff", "updates_all"): [
        (GC, "names = list(preceding) + [target]", "names = list(params)"),
        (GC, "    for k in preceding:", "    for k in names:")],
    ("gradient_change_diff", "ascent"): [(GC, "params[k] - lr * g[k]", "params[k] + lr * g[k]")],
    ("gradient_change_diff", "norm_of_g_prime"): [(GC, "diff = (G - G2).norm().item()", "diff = G2.norm().item()")],
    ("gradient_change_diff", "relative"): [
        (GC, "diff = (G - G2).norm().item()", "diff = ((G - G2).norm() / G.norm()).item()")],
    ("gradient_change_cos", "cos_not_normalized"): [
        (GC, "cos = (G @ G2 / (G.norm() * G2.norm())).item()", "cos = (G @ G2).item()")],
    ("loss_along_gradient", "steps_uphill"): [(LG, "params[k] - eta * g[k]", "params[k] + eta * g[k]")],
    ("loss_along_gradient", "normalized_direction"): [
        (LG, "params[k] - eta * g[k]", "params[k] - eta * g[k] / g_flat.norm()")],
    ("loss_along_gradient", "new_gradient_norm"): [(LG, "(g2_flat - g_flat).norm()", "g2_flat.norm()")],
    ("loss_along_gradient", "beta_not_normalized"): [
        (LG, "(np.array(step_sizes) * g_flat.norm().item())", "np.array(step_sizes)")],
    ("loss_along_gradient", "beta_mean"): [(LG, "beta = float(np.max(", "beta = float(np.mean(")],
    ("experiment_bn", "eval_mode_forgotten"): [(EX, "        model.eval()\n", "")],
    ("experiment_bn", "train_mode_not_restored"): [(EX, "        model.train()\n", "")],
    ("experiment_bn", "step_loss_mean"): [
        (EX, "        perm = torch.randperm(len(X_train), generator=gen)\n",
         "        perm = torch.randperm(len(X_train), generator=gen)\n        steps = []\n"),
        (EX, "            model.zero_grad()\n", "            steps.append(loss.item())\n            model.zero_grad()\n"),
        (EX, "            losses.append(F.binary_cross_entropy_with_logits(model(X_train)[:, 0],\n"
             "                                                             y_train.float()).item())",
         "            losses.append(float(np.mean(steps)))")],
    ("experiment_bn", "test_loss"): [
        (EX, "model(X_train)[:, 0],\n                                                             y_train.float()",
         "model(X_test)[:, 0],\n                                                             y_test.float()")],
    ("experiment_bn", "same_order_every_epoch"): [
        (EX, "        perm = torch.randperm(len(X_train), generator=gen)\n",
         "        gen = torch.Generator().manual_seed(seed)\n        perm = torch.randperm(len(X_train), generator=gen)\n")],
    ("experiment_bn", "bias_before_bn"): [(EX, "nn.Linear(width, h, bias=not use_bn)", "nn.Linear(width, h)")],
    ("experiment_bn", "bn_after_relu"): [
        (EX, "        layers.append(nn.Linear(width, h, bias=not use_bn))\n"
             "        if use_bn:\n            layers.append(nn.BatchNorm1d(h))\n        layers.append(nn.ReLU())\n",
         "        layers.append(nn.Linear(width, h))\n        layers.append(nn.ReLU())\n"
         "        if use_bn:\n            layers.append(nn.BatchNorm1d(h))\n")],
}
CHEATS_05 = [
    ([(D, "    mu = H.mean(axis=1)\n",
       "    from normlab import ics\n    ics.drift_summary(H.mean(axis=1)[:, None], H.std(axis=1)[:, None])\n    mu = H.mean(axis=1)\n")],
     ("test_input_drift",), "normlab.ics.drift_summary"),
    ([(GC, "    names = list(preceding) + [target]\n",
       "    from normlab.ics import gradient_change as gc\n"
       "    r = gc(lambda p: loss_fn(p).reshape(1), params, target, preceding, lr)\n"
       "    return float(r['diff'][0]), float(r['cos'][0])\n"
       "    names = list(preceding) + [target]\n")],
     ("test_gradient_change_diff", "test_gradient_change_cos"), "normlab.ics.gradient_change"),
    ([(EX, "    torch.manual_seed(seed)\n",
       "    from normlab import training\n    torch.manual_seed(seed)\n"
       "    model = training.mlp(20, (64, 64), norm='bn' if use_bn else None)\n"
       "    h = training.train(model, (X_train, y_train, X_test, y_test), epochs=epochs, lr=0.1, optimizer='sgd', seed=seed)\n"
       "    return np.array(h.train_loss)\n")],
     ("test_experiment_bn", "test_experiment_plain"), "normlab.training.mlp"),
]

# ------------------------------------------------------------------ 06-alternatives
NZ, NL, WN, SN, RF, RB = ("normalize", "norm_layers", "weight_norm", "spectral_norm",
                          "batch_renorm_forward", "batch_renorm_backward")
VARIANTS_06 = {
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
CHEATS_06 = [
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
VARIANTS_06.update({
    ("group_norm", "groups_over_batch"): [(NL, "normalize(grouped, (2, 3, 4), eps)", "normalize(grouped, (0, 2, 3, 4), eps)")],
    ("weight_norm_dv", "second_term_no_g"): [(WN, "(g * dg / norm ** 2)[:, None] * v", "(dg / norm ** 2)[:, None] * v")],
    ("spectral_norm", "frobenius_sigma"): [(SN, "    sigma = float(u @ (W @ v))", "    sigma = float(np.sqrt(np.sum(W * W)))")],
    ("spectral_norm", "old_vectors_returned"): [
        (SN, "    for _ in range(n_power_iterations):\n", "    u0, v0 = u, v\n    for _ in range(n_power_iterations):\n"),
        (SN, "    sigma = float(u @ (W @ v))\n", "    sigma = float(u @ (W @ v))\n    u, v = u0, v0\n")],
    ("renorm_forward", "d_sign"): [(RF, "np.clip((mu - running_mean) / sigma,", "np.clip((running_mean - mu) / sigma,")],
})


VARIANTS = {"04-test-time": VARIANTS_04, "05-ics": VARIANTS_05, "06-alternatives": VARIANTS_06}
CHEATS = {"04-test-time": CHEATS_04, "05-ics": CHEATS_05, "06-alternatives": CHEATS_06}
