"""The public functions on the NumPy cores (re-exported by ``numbaconv.reference``).

Each has the signature of its ``numbaconv._functions`` twin and takes its
docstring (``_api.reference_of``); its body calls the shared body in
``_api`` with this backend's cores.
"""
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from .. import _api, _functions
from .._api import Gradients, IntOrPair, Padding
from . import _convolution, _normalization, _patches, _pooling

# The NumPy cores allocate; with out= their results are copied into it.
_BACKEND = _api.Backend(*map(_api.writes_into, _api.Backend(
    conv2d=_convolution.conv2d,
    conv2d_transpose=_convolution.conv2d_transpose,
    conv2d_backward_filter=_convolution.conv2d_backward_filter,
    bias_backward=_convolution.bias_backward,
    grouped_conv2d=_convolution.grouped_conv2d,
    grouped_conv2d_transpose=_convolution.grouped_conv2d_transpose,
    grouped_conv2d_backward_filter=_convolution.grouped_conv2d_backward_filter,
    im2col=_patches.im2col,
    col2im=_patches.col2im,
    max_pool2d=_pooling.max_pool2d,
    max_pool2d_argmax=_pooling.max_pool2d_argmax,
    max_pool2d_backward=_pooling.max_pool2d_backward,
    lrn=_normalization.lrn,
    lrn_backward=_normalization.lrn_backward,
    max_unpool2d=_pooling.max_unpool2d,
    avg_pool2d=_pooling.avg_pool2d,
    avg_pool2d_backward=_pooling.avg_pool2d_backward,
    adaptive_avg_pool2d=_pooling.adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward=_pooling.adaptive_avg_pool2d_backward,
)))


@_api.reference_of(_functions.conv2d)
def conv2d(x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *, stride: IntOrPair = 1,
           padding: Padding = 0, dilation: IntOrPair = 1, groups: int = 1,
           data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.conv2d` (the docstring is copied from it)."""
    return _api.conv2d(_BACKEND, x, w, b, stride, padding, dilation, groups, data_format, out=out)


@_api.reference_of(_functions.conv2d_backward)
def conv2d_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, *, stride: IntOrPair = 1,
                    padding: Padding = 0, dilation: IntOrPair = 1, groups: int = 1,
                    data_format: str = "NHWC",
                    out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Gradients:
    """NumPy reference of :func:`numbaconv.conv2d_backward` (the docstring is copied from it)."""
    return _api.conv2d_backward(_BACKEND, dy, x, w, stride, padding, dilation, groups, data_format, out=out)


@_api.reference_of(_functions.conv2d_backward_input)
def conv2d_backward_input(dy: ArrayLike, w: ArrayLike, x_shape: Sequence[int], *,
                          stride: IntOrPair = 1, padding: Padding = 0, dilation: IntOrPair = 1,
                          groups: int = 1, data_format: str = "NHWC",
                          out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.conv2d_backward_input` (the docstring is copied from it)."""
    return _api.conv2d_backward_input(_BACKEND, dy, w, x_shape, stride, padding, dilation, groups,
                                      data_format, out=out)


@_api.reference_of(_functions.conv2d_backward_filter)
def conv2d_backward_filter(dy: ArrayLike, x: ArrayLike, w_shape: Sequence[int], *,
                           stride: IntOrPair = 1, padding: Padding = 0, dilation: IntOrPair = 1,
                           groups: int = 1, data_format: str = "NHWC",
                           out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.conv2d_backward_filter` (the docstring is copied from it)."""
    return _api.conv2d_backward_filter(_BACKEND, dy, x, w_shape, stride, padding, dilation, groups,
                                       data_format, out=out)


@_api.reference_of(_functions.conv2d_transpose)
def conv2d_transpose(x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *,
                     stride: IntOrPair = 1, padding: Padding = 0,
                     output_padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: int = 1,
                     data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.conv2d_transpose` (the docstring is copied from it)."""
    return _api.conv2d_transpose(_BACKEND, x, w, b, stride, padding, output_padding, dilation,
                                 groups, data_format, out=out)


@_api.reference_of(_functions.conv2d_transpose_backward)
def conv2d_transpose_backward(dy: ArrayLike, x: ArrayLike, w: ArrayLike, *,
                              stride: IntOrPair = 1, padding: Padding = 0,
                              output_padding: IntOrPair = 0, dilation: IntOrPair = 1,
                              groups: int = 1,
                              data_format: str = "NHWC",
                              out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Gradients:
    """NumPy reference of :func:`numbaconv.conv2d_transpose_backward` (the docstring is copied from it)."""
    return _api.conv2d_transpose_backward(_BACKEND, dy, x, w, stride, padding, output_padding,
                                          dilation, groups, data_format, out=out)


@_api.reference_of(_functions.im2col)
def im2col(x: ArrayLike, kernel_size: IntOrPair, *, stride: IntOrPair = 1,
           padding: Padding = 0, dilation: IntOrPair = 1,
           data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.im2col` (the docstring is copied from it)."""
    return _api.im2col(_BACKEND, x, kernel_size, stride, padding, dilation, data_format, out=out)


@_api.reference_of(_functions.col2im)
def col2im(cols: ArrayLike, x_shape: Sequence[int], kernel_size: IntOrPair, *,
           stride: IntOrPair = 1, padding: Padding = 0, dilation: IntOrPair = 1,
           data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.col2im` (the docstring is copied from it)."""
    return _api.col2im(_BACKEND, cols, x_shape, kernel_size, stride, padding, dilation,
                       data_format, out=out)


@_api.reference_of(_functions.max_pool2d)
def max_pool2d(x: ArrayLike, pool_size: IntOrPair, *, stride: IntOrPair | None = None,
               padding: Padding = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
               data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.max_pool2d` (the docstring is copied from it)."""
    return _api.max_pool2d(_BACKEND, x, pool_size, stride, padding, dilation, ceil_mode,
                           data_format, out=out)


@_api.reference_of(_functions.max_pool2d_argmax)
def max_pool2d_argmax(x: ArrayLike, pool_size: IntOrPair, *, stride: IntOrPair | None = None,
                      padding: Padding = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
                      data_format: str = "NHWC",
                      out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """NumPy reference of :func:`numbaconv.max_pool2d_argmax` (the docstring is copied from it)."""
    return _api.max_pool2d_argmax(_BACKEND, x, pool_size, stride, padding, dilation, ceil_mode,
                                  data_format, out=out)


@_api.reference_of(_functions.max_pool2d_backward)
def max_pool2d_backward(dy: ArrayLike, argmax: ArrayLike, x_shape: Sequence[int], *,
                        data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.max_pool2d_backward` (the docstring is copied from it)."""
    return _api.max_pool2d_backward(_BACKEND, dy, argmax, x_shape, data_format, out=out)


@_api.reference_of(_functions.max_unpool2d)
def max_unpool2d(y: ArrayLike, argmax: ArrayLike, x_shape: Sequence[int], *,
                 data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.max_unpool2d` (the docstring is copied from it)."""
    return _api.max_unpool2d(_BACKEND, y, argmax, x_shape, data_format, out=out)


@_api.reference_of(_functions.avg_pool2d)
def avg_pool2d(x: ArrayLike, pool_size: IntOrPair, *, stride: IntOrPair | None = None,
               padding: Padding = 0, ceil_mode: bool = False, count_include_pad: bool = False,
               data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.avg_pool2d` (the docstring is copied from it)."""
    return _api.avg_pool2d(_BACKEND, x, pool_size, stride, padding, ceil_mode, count_include_pad,
                           data_format, out=out)


@_api.reference_of(_functions.avg_pool2d_backward)
def avg_pool2d_backward(dy: ArrayLike, x_shape: Sequence[int], pool_size: IntOrPair, *,
                        stride: IntOrPair | None = None, padding: Padding = 0,
                        ceil_mode: bool = False, count_include_pad: bool = False,
                        data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.avg_pool2d_backward` (the docstring is copied from it)."""
    return _api.avg_pool2d_backward(_BACKEND, dy, x_shape, pool_size, stride, padding, ceil_mode,
                                    count_include_pad, data_format, out=out)


@_api.reference_of(_functions.adaptive_avg_pool2d)
def adaptive_avg_pool2d(x: ArrayLike, output_size: IntOrPair, *,
                        data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.adaptive_avg_pool2d` (the docstring is copied from it)."""
    return _api.adaptive_avg_pool2d(_BACKEND, x, output_size, data_format, out=out)


@_api.reference_of(_functions.adaptive_avg_pool2d_backward)
def adaptive_avg_pool2d_backward(dy: ArrayLike, x_shape: Sequence[int], *,
                                 data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.adaptive_avg_pool2d_backward` (the docstring is copied from it)."""
    return _api.adaptive_avg_pool2d_backward(_BACKEND, dy, x_shape, data_format, out=out)


@_api.reference_of(_functions.lrn)
def lrn(x: ArrayLike, *, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0,
        beta: float = 0.5, data_format: str = "NHWC", out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.lrn` (the docstring is copied from it)."""
    return _api.lrn(_BACKEND, x, depth_radius, bias, alpha, beta, data_format, out=out)


@_api.reference_of(_functions.lrn_backward)
def lrn_backward(dy: ArrayLike, x: ArrayLike, *, depth_radius: int = 5, bias: float = 1.0,
                 alpha: float = 1.0, beta: float = 0.5, data_format: str = "NHWC",
                 out: np.ndarray | None = None) -> np.ndarray:
    """NumPy reference of :func:`numbaconv.lrn_backward` (the docstring is copied from it)."""
    return _api.lrn_backward(_BACKEND, dy, x, depth_radius, bias, alpha, beta, data_format, out=out)
