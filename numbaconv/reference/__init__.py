"""The NumPy reference: numbaconv's executable specification.

Same functions, signatures and results (to float tolerance) as ``numbaconv``,
written as vectorized NumPy to be read. Validation is shared with the fast
path (``numbaconv._validate``), and so are the docstrings (each function's is
that of its ``numbaconv`` twin); the cores in this package work on
NHWC-indexed arrays.
"""
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

__all__ = [
    "conv2d", "conv2d_backward", "conv2d_backward_input", "conv2d_backward_filter",
    "conv2d_transpose", "conv2d_transpose_backward",
    "im2col", "col2im",
    "max_pool2d", "max_pool2d_argmax", "max_pool2d_backward", "max_unpool2d",
    "avg_pool2d", "avg_pool2d_backward", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "lrn", "lrn_backward",
]
