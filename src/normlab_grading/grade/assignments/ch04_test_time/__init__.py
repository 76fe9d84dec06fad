"""Assignment 04-test-time: a BatchNorm1d with running statistics, momentum, folding.

The student writes (numpy only):

- ``class BatchNorm1d(num_features, eps=1e-5, momentum=0.1)`` with torch's attributes
  ``weight`` (ones), ``bias`` (zeros), ``running_mean`` (zeros), ``running_var`` (ones),
  ``num_batches_tracked`` (0), ``training`` (True), methods ``train(mode=True)``,
  ``eval()`` and ``forward(x)`` for x (N, C) or (N, C, L). It must match
  ``torch.nn.BatchNorm1d`` in float64 to rounding error: batch statistics and the
  unbiased running variance in training, ``momentum=None`` as a cumulative average,
  running statistics in eval (any N), ValueError for a training batch with one value per
  channel;
- ``keras_to_torch_momentum(m)``: ``1 - m``, ValueError outside [0, 1];
- ``fold_batchnorm(W, b, gamma, beta, running_mean, running_var, eps=1e-5) -> (W', b')``
  for a Linear (out, in) or conv (out, in, kh, kw) weight, ``b`` possibly None.

References: ``normlab.BatchNorm1d`` (replayed call by call), ``normlab.keras_to_torch_momentum``,
``normlab.fold_batchnorm``. Wrong answers: ``answers``.
"""

NAME = "04-test-time"
