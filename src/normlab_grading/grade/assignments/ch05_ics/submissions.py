"""The student code of each recognised mistake of assignment 05-ics, and of submissions
that call the reference or a library routine (used by the tests).

``VARIANTS[(check, mistake)]``: edits ``(solution cell id, old text, new text)`` that turn
the solution into a submission whose only mistake is that one (one entry per ``Expected``
row); ``CHEATS``: ``(edits, failing cells or "all", routine named in the message)``.
"""

# fmt: off

D, GC, LG, EX = "input_drift", "gradient_change", "loss_along_gradient", "run_experiment"
VARIANTS = {
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
CHEATS = [
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
