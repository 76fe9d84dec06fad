"""Momentum conventions for running statistics: PyTorch's versus Keras's.

PyTorch: ``running = (1 - m) * running + m * batch`` (default m = 0.1).
Keras:   ``moving = m * moving + (1 - m) * batch`` (default m = 0.99).
The same update therefore has ``torch_m = 1 - keras_m``: Keras 0.99 is torch 0.01.
"""

from __future__ import annotations

from .validation import check_momentum

__all__ = ["keras_to_torch_momentum", "torch_to_keras_momentum"]


def keras_to_torch_momentum(m) -> float:
    """Keras ``BatchNormalization(momentum=m)`` as PyTorch's momentum: ``1 - m``."""
    return 1.0 - check_momentum(m, "keras momentum")


def torch_to_keras_momentum(m) -> float:
    """PyTorch ``BatchNorm*d(momentum=m)`` as Keras's momentum: ``1 - m``."""
    return 1.0 - check_momentum(m, "torch momentum")
