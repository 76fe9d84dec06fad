"""Assignment 06-alternatives: LN/IN/GN through one function, weight norm, spectral norm,
batch renormalization (numpy only).

The student writes:

- ``normalize(x, axes, eps=1e-5)``: ``(x - mean) / sqrt(var + eps)`` over ``axes``, biased;
- ``layer_norm(x, gamma, beta, eps)`` (x (N, C, H, W), gamma/beta (C, H, W)),
  ``instance_norm(x, gamma, beta, eps)`` and ``group_norm(x, gamma, beta, num_groups, eps)``
  (gamma/beta (C,)), all through ``normalize``;
- ``weight_norm(v, g) -> w`` (v (out, in), g (out,), one norm per row) and
  ``weight_norm_backward(dw, v, g) -> (dv, dg)``;
- ``spectral_norm(W, u, v, n_power_iterations=1, eps=1e-12) -> (W_sn, u, v, sigma)``, torch's
  training-mode order (u from v first, then v from u, ``normalize(a) = a / max(||a||, eps)``);
- ``batch_renorm_forward(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5,
  momentum=0.1) -> (out, r, d, new_running_mean, new_running_var)`` for x (N, C) and
  ``batch_renorm_backward(dout, cache) -> (dx, dgamma, dbeta)`` with the documented
  ``cache = (x0, r, d, sigma_B, sigma, gamma)`` built here, r and d held constant.

References: ``normlab.norm_over_axes_forward``, ``layernorm_forward``,
``instancenorm_forward``, ``groupnorm_forward``, ``weightnorm_forward``/``_backward``,
``spectral_norm``, ``batchrenorm_forward``/``_backward``. Wrong answers:
``answers``.
"""

NAME = "06-alternatives"
