"""normlab: reference implementations for a course on normalization in deep learning.

Everything is numpy, float64-exact, and matches PyTorch 2.13 wherever PyTorch has the same
layer (see shared/SEMANTICS.md). The functional API follows CS231n's style:
``forward(x, ...) -> (out, cache)`` and ``backward(dout, cache) -> grads``.
"""

from .gradcheck import numerical_gradient, rel_error
from .normalize import normalize_backward, normalize_forward

# --- scaling (feature scaling, z-score, conditioning) ---
# --- end scaling ---

# --- batch normalization (functional, layer, folding) ---
# --- end batch normalization ---

# --- alternatives (layer/instance/group norm, batch renorm, weight/spectral norm, torch modules) ---
# --- end alternatives ---

__version__ = "0.1.0"
