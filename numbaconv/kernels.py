"""numbaconv's kernels for your own ``@numba.njit`` code: no validation, no allocation of results.

Every op of numbaconv as a Numba-compiled function that nopython code can
call: NHWC ``float32``/``float64`` arrays, HWIO filters, plain integer
geometry, and the result written into an array you pass. These are the
kernels that ``numbaconv.conv2d`` and friends run (one implementation);
those Python functions stay the safe entry point.

**Nothing is checked here.** Arrays must be C-contiguous, of one float
dtype, with exactly the shapes below (use the ``output_shape_*`` helpers,
callable from ``@njit`` code too, to allocate results), and the geometry
must be valid (strides and dilations >= 1, paddings >= 0, a non-empty
output, max-pool padding smaller than the window). A wrong shape or
geometry reads or writes out of bounds, silently. Scratch memory is
allocated inside; results never are.

Two flavours of each function:

- ``conv2d`` etc. parallelize themselves over Numba's thread pool: call
  them from serial code (a plain ``@njit`` function, or Python).
- ``conv2d_serial`` etc. are the same source compiled with
  ``parallel=False``: call them inside your own ``prange`` loop (say, over
  the batch, one sample per call). A parallel kernel inside a ``prange``
  body is a nested parallel region, which Numba's workqueue layer aborts
  on and the others may oversubscribe or hang (numba#3551, #4484).

Each flavour compiles (or loads from Numba's cache) on its first call, per
dtype; the serial ones are compiled only if you call them. Importing this
module starts Numba's thread pool (as the first call of any parallel kernel
does): a cached function of yours that calls these kernels, loaded in a new
process, would otherwise crash on its first parallel region (numba#9938).

Shapes: ``x (N, H, W, C_in)``, ``w (KH, KW, C_in, C_out)``, ``b
(C_out,)``, ``y (N, OH, OW, C_out)``, ``OH = (H + pad_top + pad_bottom -
dilation_h * (KH - 1) - 1) // stride_h + 1`` (OW alike). The output's shape
fixes the bottom/right padding, so only ``im2col``/``col2im`` take it.

The signatures (results are the last array arguments; ``<conv>`` is
``stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w``, ``<im2col>``
is ``kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_bottom, pad_left,
pad_right, dilation_h, dilation_w``, ``<pool>`` is ``pool_h, pool_w, stride_h,
stride_w, pad_top, pad_left``, ``<pads>`` is ``pad_top, pad_bottom, pad_left,
pad_right``)::

    conv2d(x, w, b, y, <conv>)                 y = conv2d(x, w) + b
    conv2d_backward_input(dy, w, dx, <conv>)   dx (x's shape): input gradient
    conv2d_backward_filter(dy, x, dw, <conv>)  dw (w's shape): filter gradient
    conv2d_backward_bias(dy, db)               db[c] = dy[..., c].sum()
    conv2d_transpose(x, w, b, y, <conv>)       y (N, H, W, C_in) = transpose(x (N, OH, OW, C_out)) + b;
                                               output padding is y's extra size
    im2col(x, cols, <im2col>)                  cols (N * OH * OW, KH * KW * C), columns (kh, kw, c)
    col2im(cols, x, <im2col>)                  x (N, H, W, C): the adjoint of im2col
    max_pool2d(x, y, <pool>)                   y (N, OH, OW, C): window maxima, NaN propagates
    max_pool2d_argmax(x, y, argmax, <pool>)    and argmax (int64, flat h * W + w)
    max_pool2d_backward(dy, argmax, dx)        dx (N, H, W, C): dy added at argmax
    lrn(x, y, depth_radius, bias, alpha, beta)           TensorFlow's LRN
    lrn_backward(dy, x, dx, depth_radius, bias, alpha, beta)   its gradient
    output_shape_conv2d(x_shape, w_shape, stride_h, stride_w, <pads>, dilation_h, dilation_w)
                                               (N, OH, OW, C_out)
    output_shape_conv2d_transpose(x_shape, w_shape, stride_h, stride_w, <pads>, dilation_h,
                                  dilation_w, output_padding_h, output_padding_w)
                                               (N, OH, OW, C_in)
    output_shape_im2col(x_shape, <im2col>)     (N * OH * OW, KH * KW * C)
    output_shape_max_pool2d(x_shape, pool_h, pool_w, stride_h, stride_w, <pads>)
                                               (N, OH, OW, C)
    same_padding(size, kernel, stride, dilation)   TensorFlow's "SAME" (before, after)

Every function but the helpers has a ``*_serial`` twin with the same
arguments. The transposed convolution's gradients are ``conv2d(dy, w,
zeros, dx, ...)`` and ``conv2d_backward_filter(x, dy, dw, ...)`` (x and dy
swap roles) with the same geometry. ``argmax`` must come from
``max_pool2d_argmax`` of the same shapes.

Examples
--------
>>> import numba
>>> import numpy as np
>>> from numbaconv import kernels as K
>>> @numba.njit
... def conv_relu(x, w, b):
...     y = np.empty(K.output_shape_conv2d(x.shape, w.shape, 1, 1, 1, 1, 1, 1, 1, 1), x.dtype)
...     K.conv2d(x, w, b, y, 1, 1, 1, 1, 1, 1)
...     return np.maximum(y, 0)
>>> x, w = np.ones((1, 4, 4, 2), np.float32), np.ones((3, 3, 2, 1), np.float32)
>>> conv_relu(x, w, np.zeros(1, np.float32))[0, :, :, 0]
array([[ 8., 12., 12.,  8.],
       [12., 18., 18., 12.],
       [12., 18., 18., 12.],
       [ 8., 12., 12.,  8.]], dtype=float32)
"""
import numpy as np

from . import _geometry
from ._kernels.conv_drivers import backward_filter as _backward_filter
from ._kernels.conv_drivers import bias_backward as _bias_backward
from ._kernels.conv_drivers import forward as _forward
from ._kernels.conv_drivers import nhwc_image as _image
from ._kernels.conv_drivers import transpose as _transpose
from ._kernels.normalization import BLOCK_ELEMENTS as _BLOCK_ELEMENTS
from ._kernels.normalization import lrn_backward_nhwc as _lrn_backward_nhwc
from ._kernels.normalization import lrn_nhwc as _lrn_nhwc
from ._kernels.patches import col2im_nhwc as _col2im_nhwc
from ._kernels.patches import im2col_nhwc as _im2col_nhwc
from ._kernels.pooling import max_pool2d_argmax_nhwc as _max_pool2d_argmax_nhwc
from ._kernels.pooling import max_pool2d_backward_nhwc as _max_pool2d_backward_nhwc
from ._kernels.pooling import max_pool2d_nhwc as _max_pool2d_nhwc
from ._numba import kernel, launch_threads, serial

__all__ = [
    "conv2d", "conv2d_backward_input", "conv2d_backward_filter", "conv2d_backward_bias",
    "conv2d_transpose", "im2col", "col2im",
    "max_pool2d", "max_pool2d_argmax", "max_pool2d_backward", "lrn", "lrn_backward",
    "conv2d_serial", "conv2d_backward_input_serial", "conv2d_backward_filter_serial",
    "conv2d_backward_bias_serial", "conv2d_transpose_serial", "im2col_serial", "col2im_serial",
    "max_pool2d_serial", "max_pool2d_argmax_serial", "max_pool2d_backward_serial",
    "lrn_serial", "lrn_backward_serial",
    "output_shape_conv2d", "output_shape_conv2d_transpose", "output_shape_im2col",
    "output_shape_max_pool2d", "same_padding",
]

launch_threads()  # see the module docstring (numba#9938)

_out_size = kernel(_geometry.conv_out_size, parallel=False)
_transpose_size = kernel(_geometry.transpose_out_size, parallel=False)
same_padding = kernel(_geometry.same_padding, parallel=False)


# ------------------------------------------------------------------ shapes


@kernel(parallel=False)
def output_shape_conv2d(x_shape, w_shape, stride_h, stride_w, pad_top, pad_bottom, pad_left,
                        pad_right, dilation_h, dilation_w):
    """(N, OH, OW, C_out) of ``conv2d`` on x of ``x_shape`` (NHWC) and w of ``w_shape`` (HWIO)."""
    return (x_shape[0], _out_size(x_shape[1], w_shape[0], stride_h, dilation_h, pad_top, pad_bottom),
            _out_size(x_shape[2], w_shape[1], stride_w, dilation_w, pad_left, pad_right), w_shape[3])


@kernel(parallel=False)
def output_shape_conv2d_transpose(x_shape, w_shape, stride_h, stride_w, pad_top, pad_bottom,
                                  pad_left, pad_right, dilation_h, dilation_w, output_padding_h,
                                  output_padding_w):
    """(N, OH, OW, C_in) of ``conv2d_transpose`` on x of ``x_shape`` (N, H, W, C_out), w of ``w_shape``."""
    return (x_shape[0],
            _transpose_size(x_shape[1], w_shape[0], stride_h, dilation_h, pad_top, pad_bottom,
                            output_padding_h),
            _transpose_size(x_shape[2], w_shape[1], stride_w, dilation_w, pad_left, pad_right,
                            output_padding_w),
            w_shape[2])


@kernel(parallel=False)
def output_shape_im2col(x_shape, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_bottom,
                        pad_left, pad_right, dilation_h, dilation_w):
    """(N * OH * OW, KH * KW * C) of ``im2col`` on x of ``x_shape`` (NHWC)."""
    oh = _out_size(x_shape[1], kernel_h, stride_h, dilation_h, pad_top, pad_bottom)
    ow = _out_size(x_shape[2], kernel_w, stride_w, dilation_w, pad_left, pad_right)
    return x_shape[0] * oh * ow, kernel_h * kernel_w * x_shape[3]


@kernel(parallel=False)
def output_shape_max_pool2d(x_shape, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom,
                            pad_left, pad_right):
    """(N, OH, OW, C) of ``max_pool2d`` on x of ``x_shape`` (NHWC)."""
    return (x_shape[0], _out_size(x_shape[1], pool_h, stride_h, 1, pad_top, pad_bottom),
            _out_size(x_shape[2], pool_w, stride_w, 1, pad_left, pad_right), x_shape[3])


# ------------------------------------------------------------- convolution


@kernel(parallel=False)
def _ints6(a, b, c, d, e, f):
    """Geometry as plain int64s (not literal types).

    Constants in the caller's code arrive as literal types, and Numba would
    compile the kernels again for every distinct value of a literal argument.
    """
    return np.int64(a), np.int64(b), np.int64(c), np.int64(d), np.int64(e), np.int64(f)


@kernel(parallel=False)
def _hwio_steps(w):
    k_h, k_w, c_in, c_out = w.shape
    return k_w * c_in * c_out, c_in * c_out, c_out, 1


@kernel(parallel=False)
def conv2d(x, w, b, y, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w):
    """y[n, oh, ow, o] = b[o] + sum(x[n, oh * stride_h - pad_top + kh * dilation_h, ..., i] * w[kh, kw, i, o])."""
    k_h, k_w, c_in, c_out = w.shape
    sh, sw, pt, pl, dh, dw = _ints6(stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w)
    _forward(_image(x), w.reshape(-1), _hwio_steps(w), c_in, c_out, b, _image(y),
             np.arange(k_h), np.arange(k_w), np.bool_(False), sh, sw, dh, dw, pt, pl)


@kernel(parallel=False)
def conv2d_transpose(x, w, b, y, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w):
    """y = b + the transposed convolution of x (N, OH, OW, C_out) into y (N, H, W, C_in)."""
    sh, sw, pt, pl, dh, dw = _ints6(stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w)
    _transpose(_image(x), w.reshape(-1), _hwio_steps(w), w.shape[0], w.shape[1], b, _image(y),
               sh, sw, dh, dw, pt, pl)


@kernel(parallel=False)
def conv2d_backward_input(dy, w, dx, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w):
    """dx = the gradient of sum(conv2d(x, w) * dy) with respect to x (dx has x's shape)."""
    sh, sw, pt, pl, dh, dw = _ints6(stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w)
    _transpose(_image(dy), w.reshape(-1), _hwio_steps(w), w.shape[0], w.shape[1],
               np.zeros(w.shape[2], w.dtype), _image(dx), sh, sw, dh, dw, pt, pl)


@kernel(parallel=False)
def conv2d_backward_filter(dy, x, dw, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w):
    """dw = the gradient of sum(conv2d(x, w) * dy) with respect to w (dw has w's shape, HWIO)."""
    sh, sw, pt, pl, dh, dw_ = _ints6(stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w)
    _backward_filter(_image(x), _image(dy), dw, sh, sw, dh, dw_, pt, pl)


@kernel(parallel=False)
def conv2d_backward_bias(dy, db):
    """db[c] = sum of dy[n, oh, ow, c] over n, oh, ow."""
    _bias_backward(_image(dy), db)


# ----------------------------------------------------------------- patches


@kernel(parallel=False)
def im2col(x, cols, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_bottom, pad_left,
           pad_right, dilation_h, dilation_w):
    """cols[(n, oh, ow), (kh, kw, c)] = x[n, oh * stride_h - pad_top + kh * dilation_h, ..., c] (0 on padding)."""
    kh, kw, sh, sw, dh, dw = _ints6(kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w)
    oh = _out_size(x.shape[1], kh, sh, dh, pad_top, pad_bottom)
    ow = _out_size(x.shape[2], kw, sw, dw, pad_left, pad_right)
    _im2col_nhwc(x, cols, oh, ow, kh, kw, sh, sw, dh, dw, np.int64(pad_top), np.int64(pad_left))


@kernel(parallel=False)
def col2im(cols, x, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_bottom, pad_left,
           pad_right, dilation_h, dilation_w):
    """x = the adjoint of im2col: every cols entry summed into the pixel it was read from."""
    kh, kw, sh, sw, dh, dw = _ints6(kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w)
    oh = _out_size(x.shape[1], kh, sh, dh, pad_top, pad_bottom)
    ow = _out_size(x.shape[2], kw, sw, dw, pad_left, pad_right)
    _col2im_nhwc(cols, x, oh, ow, kh, kw, sh, sw, dh, dw, np.int64(pad_top), np.int64(pad_left))


# ----------------------------------------------------------------- pooling


@kernel(parallel=False)
def max_pool2d(x, y, pool_h, pool_w, stride_h, stride_w, pad_top, pad_left):
    """y[n, oh, ow, c] = the maximum of x over the window (padding never wins; NaN propagates)."""
    kh, kw, sh, sw, pt, pl = _ints6(pool_h, pool_w, stride_h, stride_w, pad_top, pad_left)
    _max_pool2d_nhwc(x, kh, kw, sh, sw, pt, pl, x.dtype.type(1), y)


@kernel(parallel=False)
def max_pool2d_argmax(x, y, argmax, pool_h, pool_w, stride_h, stride_w, pad_top, pad_left):
    """max_pool2d, and argmax[n, oh, ow, c] = h * W + w of the first maximum of the window."""
    kh, kw, sh, sw, pt, pl = _ints6(pool_h, pool_w, stride_h, stride_w, pad_top, pad_left)
    _max_pool2d_argmax_nhwc(x, kh, kw, sh, sw, pt, pl, y, argmax)


@kernel(parallel=False)
def max_pool2d_backward(dy, argmax, dx):
    """dx = zeros, then dx[n, argmax[n, oh, ow, c], c] += dy[n, oh, ow, c] (dx viewed as (N, H * W, C))."""
    n, h, w, c = dx.shape
    _max_pool2d_backward_nhwc(dy, argmax, dx.reshape(n, h * w, c))


# --------------------------------------------------------------------- LRN


@kernel(parallel=False)
def lrn(x, y, depth_radius, bias, alpha, beta):
    """y = x / (bias + alpha * sum of x ** 2 over channels c - r .. c + r) ** beta (TensorFlow's LRN)."""
    c = x.shape[3]
    if x.size == 0:
        return
    t = x.dtype.type
    _lrn_nhwc(x.reshape(-1), c, np.int64(min(depth_radius, c - 1)), t(bias), t(alpha), t(beta),
              max(_BLOCK_ELEMENTS // c, 1), y.reshape(-1))


@kernel(parallel=False)
def lrn_backward(dy, x, dx, depth_radius, bias, alpha, beta):
    """dx = the gradient of sum(lrn(x) * dy) with respect to x."""
    c = x.shape[3]
    if x.size == 0:
        return
    t = x.dtype.type
    _lrn_backward_nhwc(dy.reshape(-1), x.reshape(-1), c, np.int64(min(depth_radius, c - 1)), t(bias),
                       t(alpha), t(beta), t(2 * alpha * beta), max(_BLOCK_ELEMENTS // c, 1),
                       dx.reshape(-1))


# ----------------------------------------- the twins for prange loops

conv2d_serial = serial(conv2d)
conv2d_backward_input_serial = serial(conv2d_backward_input)
conv2d_backward_filter_serial = serial(conv2d_backward_filter)
conv2d_backward_bias_serial = serial(conv2d_backward_bias)
conv2d_transpose_serial = serial(conv2d_transpose)
im2col_serial = serial(im2col)
col2im_serial = serial(col2im)
max_pool2d_serial = serial(max_pool2d)
max_pool2d_argmax_serial = serial(max_pool2d_argmax)
max_pool2d_backward_serial = serial(max_pool2d_backward)
lrn_serial = serial(lrn)
lrn_backward_serial = serial(lrn_backward)
