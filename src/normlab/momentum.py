"""Momentum conventions for running statistics: PyTorch's versus Keras's.

PyTorch: ``running = (1 - m) * running + m * batch`` (default m = 0.1).
Keras:   ``moving = m * moving + (1 - m) * batch`` (default m = 0.99).
The same update therefore has ``torch_m = 1 - keras_m``: Keras 0.99 is torch 0.01.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["check_momentum", "keras_to_torch_momentum", "torch_to_keras_momentum"]


def check_momentum(m, name: str = "momentum") -> float:
    """``m`` as a float; TypeError if not a real number, ValueError if not in [0, 1]."""
    if isinstance(m, bool) or not isinstance(m, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1], got {type(m).__name__}")
    m = float(m)
    if not (math.isfinite(m) and 0.0 <= m <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {m}")
    return m


def keras_to_torch_momentum(m) -> float:
    """Keras ``BatchNormalization(momentum=m)`` as PyTorch's momentum: ``1 - m``."""
    return 1.0 - check_momentum(m, "keras momentum")


def torch_to_keras_momentum(m) -> float:
    """PyTorch ``BatchNorm*d(momentum=m)`` as Keras's momentum: ``1 - m``."""
    return 1.0 - check_momentum(m, "torch momentum")
