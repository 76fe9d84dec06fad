"""Assignment 07-rmsnorm: RMS normalization (均方根归一化), forward and backward (numpy only).

The student writes (CS231n's functional style):

- ``rmsnorm_forward(x, gamma, eps=None) -> (out, cache)``: over the trailing axes of shape
  ``gamma.shape``, as ``torch.nn.RMSNorm``: ``rms = sqrt(mean(x**2) + eps)``,
  ``out = gamma * x / rms``; ``eps=None`` means torch's default ``np.finfo(x.dtype).eps``;
  ``cache = (x, x_hat, rms, gamma, eps)`` with ``rms`` keeping the normalized axes as size 1
  and ``eps`` the value used; ValueError when x's trailing shape is not ``gamma.shape``;
- ``rmsnorm_backward(dout, cache) -> (dx, dgamma)``.

The backward checks pass the student a cache built by the grader in the documented layout,
so a wrong forward pass does not also cost the backward points.
References: ``normlab.rmsnorm_forward``, ``normlab.rmsnorm_backward``.
"""

NAME = "07-rmsnorm"
