"""Running statistics of batch normalization: torch's update, in one place.

While tracking, every training forward of ``torch.nn.BatchNorm*d`` does::

    num_batches_tracked += 1
    f = momentum, or 1 / num_batches_tracked when momentum is None   # cumulative average
    running_mean = (1 - f) * running_mean + f * batch_mean
    running_var  = (1 - f) * running_var  + f * batch_var * n / (n - 1)   # UNBIASED

with ``batch_var`` the biased variance of the ``n`` values per channel. The BatchNorm layers
(``normlab.layers``), batch renormalization (``normlab.renorm``) and its torch module
(``normlab.torch_modules``) all use :func:`running_factor` and :func:`update_moving_stats`.
Both work on numpy arrays and on torch tensors alike (arithmetic only).
"""

from __future__ import annotations

from .validation import check_int, check_momentum

__all__ = ["running_factor", "update_moving_stats"]


def running_factor(momentum, num_batches_tracked) -> float:
    """torch's ``exponential_average_factor``: ``momentum``, or ``1 / num_batches_tracked``
    (already incremented for this batch) when ``momentum`` is None."""
    if momentum is not None:
        return check_momentum(momentum)
    return 1.0 / check_int(int(num_batches_tracked), "num_batches_tracked", 1)


def update_moving_stats(running_mean, running_var, batch_mean, batch_var, n: int, momentum=0.1):
    """Torch BatchNorm's running-statistics update; return ``(new_mean, new_var)``.

    ``new = (1 - momentum) * running + momentum * batch`` with the UNBIASED batch variance
    ``batch_var * n / (n - 1)`` (``batch_var`` is the biased one, n values per channel).
    ``momentum`` is the factor of this step (see :func:`running_factor`). All arrays have
    shape (C,); the inputs are not modified.
    """
    momentum = check_momentum(momentum)
    if n < 2:
        raise ValueError(f"the unbiased variance needs n >= 2 values per channel, got n={n}")
    new_mean = (1 - momentum) * running_mean + momentum * batch_mean
    new_var = (1 - momentum) * running_var + momentum * batch_var * (n / (n - 1))
    return new_mean, new_var
