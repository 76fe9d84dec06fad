"""The student code of each recognised mistake of assignment 04-test-time, and of submissions
that call the reference or a library routine (used by the tests).

``VARIANTS[(check, mistake)]``: edits ``(solution cell id, old text, new text)`` that turn
the solution into a submission whose only mistake is that one (one entry per ``Expected``
row); ``CHEATS``: ``(edits, failing cells or "all", routine named in the message)``.
"""

# fmt: off

BN = "batchnorm1d"
UPDATE = ("            self.num_batches_tracked += 1\n"
          "            f = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum\n"
          "            self.running_mean = (1 - f) * self.running_mean + f * mean\n"
          "            self.running_var = (1 - f) * self.running_var + f * var * n / (n - 1)\n")
VARIANTS = {
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
CHEATS = [
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
