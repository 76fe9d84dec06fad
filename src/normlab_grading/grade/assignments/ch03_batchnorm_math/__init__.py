"""Assignment 03-batchnorm-math: batch norm forward/backward, spatial BN, gradient check.

The student writes (CS231n's functional style, numpy only):

- ``batchnorm_forward(x, gamma, beta, eps=1e-5) -> (out, cache)``, x (N, D), training mode
  (batch mean, BIASED batch variance), ``cache = (x, x_hat, mu, var, gamma, eps)``;
- ``batchnorm_backward(dout, cache) -> (dx, dgamma, dbeta)``, staged through the graph;
- ``batchnorm_backward_alt(dout, cache)``, the same in closed form;
- ``spatial_batchnorm_forward(x, gamma, beta, eps=1e-5) -> (out, cache)``, x (N, C, H, W),
  statistics per channel over (N, H, W), the same cache layout with x_hat 4-D and
  mu, var of shape (C,); ``spatial_batchnorm_backward(dout, cache)``;
- ``numerical_gradient(f, x, dout, h=1e-5)`` (centred differences of sum(f(x) * dout))
  and ``rel_error(a, b)`` (max |a - b| / max(1e-8, |a| + |b|)).

The backward checks pass the student a cache built by the grader in the documented layout,
so a wrong forward pass does not also cost the backward points.
References: ``normlab.batchnorm_*``, ``normlab.spatial_batchnorm_*``,
``normlab.numerical_gradient``, ``normlab.rel_error``.
"""

NAME = "03-batchnorm-math"
