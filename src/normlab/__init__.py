"""normlab: reference implementations for a course on normalization in deep learning.

Everything is numpy (computing in float64, or in the input's float32) and matches PyTorch 2.13
wherever PyTorch has the same layer, to rounding error. The functional API follows CS231n's style:
``forward(x, ...) -> (out, cache)`` and ``backward(dout, cache) -> grads``.
"""

from .gradcheck import numerical_gradient, rel_error
from .normalize import normalize_backward, normalize_forward

# --- scaling (feature scaling, z-score, conditioning) ---
from .conditioning import (
    GDResult,
    condition_number,
    count_gd_iterations,
    gradient_descent,
    least_squares_hessian,
    loss_surface,
    make_elongated_regression,
)
from .scaling import MinMaxScaler, NotFittedError, StandardScaler, min_max_scale, zscore
# --- end scaling ---

# --- batch normalization (functional, layer, folding) ---
from .batchnorm import (
    BatchNormCache,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_eval_backward,
    batchnorm_eval_forward,
    batchnorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from .folding import fold_batchnorm
from .layers import BatchNorm, BatchNorm1d, BatchNorm2d, BatchNorm3d
from .momentum import keras_to_torch_momentum, torch_to_keras_momentum
# --- end batch normalization ---

# --- alternatives (layer/instance/group/RMS norm, batch renorm, weight/spectral norm, torch modules) ---
from .groupwise import (
    groupnorm_backward,
    groupnorm_forward,
    instancenorm_backward,
    instancenorm_forward,
    layernorm_backward,
    layernorm_forward,
    norm_over_axes_backward,
    norm_over_axes_forward,
)
from .renorm import batchrenorm_backward, batchrenorm_forward, renorm_schedule
from .rmsnorm import rmsnorm_backward, rmsnorm_forward
from .running_stats import running_factor, update_moving_stats
from .spectralnorm import SpectralNorm, spectral_norm, spectral_norm_backward, spectral_norm_init
from .weightnorm import weightnorm_backward, weightnorm_forward

# The torch modules (BatchRenorm1d/2d, NoisyBatchNorm1d/2d) live in normlab.torch_modules and
# are not imported here, so that `import normlab` does not import torch.
# --- end alternatives ---

__version__ = "0.1.0"
