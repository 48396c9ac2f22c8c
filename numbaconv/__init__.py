"""numbaconv: fast CPU kernels for classic CNN layers, with Numba.

The functions here run Numba ``@njit(parallel=True)`` loop kernels;
``numbaconv.reference`` has the same functions, with the same signatures, in
vectorized NumPy. See the README for the API at a glance and its mapping to
TensorFlow and PyTorch.
"""
from . import reference
from ._functions import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    col2im,
    conv2d,
    conv2d_backward,
    conv2d_backward_filter,
    conv2d_backward_input,
    conv2d_transpose,
    conv2d_transpose_backward,
    im2col,
    lrn,
    lrn_backward,
    max_pool2d,
    max_pool2d_argmax,
    max_pool2d_backward,
    max_unpool2d,
)
from ._warmup import warmup

__version__ = "0.1.0"

__all__ = [
    "conv2d", "conv2d_backward", "conv2d_backward_input", "conv2d_backward_filter",
    "conv2d_transpose", "conv2d_transpose_backward",
    "im2col", "col2im",
    "max_pool2d", "max_pool2d_argmax", "max_pool2d_backward", "max_unpool2d",
    "avg_pool2d", "avg_pool2d_backward", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "lrn", "lrn_backward",
    "warmup", "reference",
]
