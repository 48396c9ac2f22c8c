"""numbaconv's kernels for your own ``@numba.njit`` code: no validation, no allocation of results.

Every op of numbaconv as a Numba-compiled function that nopython code can
call: NHWC ``float32``/``float64`` arrays, HWIO filters, plain integer
geometry, and the result written into an array you pass. They run the
kernels that ``numbaconv.conv2d`` and friends run, planned by the same
arithmetic (one implementation); those Python functions stay the safe entry
point.

**Nothing is checked here.** Arrays must be C-contiguous (a slice along
the batch axis, ``x[i:i + 1]``, is), all of one float dtype (``argmax``
int64), with exactly the shapes below (use the ``output_shape_*`` helpers,
callable from ``@njit`` code too, to allocate results), and the geometry
must be valid (strides and dilations >= 1, paddings >= 0, a non-empty
output, pool padding smaller than the window, no window without an input
cell). A wrong shape or geometry reads or writes out of bounds, silently.
Scratch memory is allocated inside; results never are.

Two flavours of each function:

- ``conv2d`` etc. parallelize themselves over Numba's thread pool: call
  them from serial code (a plain ``@njit`` function, or Python).
- ``conv2d_serial`` etc. are the same source compiled with
  ``parallel=False``: call them inside your own ``prange`` loop (say, over
  the batch, one sample per call). A parallel kernel inside a ``prange``
  body is a nested parallel region, which Numba's workqueue layer aborts
  on and the others may oversubscribe or hang (numba#3551, #4484).

Importing this module compiles nothing. Each function compiles (or loads
from Numba's cache) on its first call, per dtype; the serial flavour only
if you call it. Importing it starts Numba's thread pool (as the first call
of any parallel kernel does): a cached function of yours that calls these
kernels, loaded in a new process, would otherwise crash on its first
parallel region (numba#9938).

Shapes: ``x (N, H, W, C_in)``, ``w (KH, KW, C_in, C_out)``, ``b
(C_out,)``, ``y (N, OH, OW, C_out)``, ``OH = (H + pad_top + pad_bottom -
dilation_h * (KH - 1) - 1) // stride_h + 1`` (OW alike; pooling with
``ceil_mode`` rounds up, see :func:`output_shape_pool2d`). The result's
shape fixes the bottom/right padding (and a transpose's output padding,
and pooling's ``ceil_mode``), so only the ops whose arithmetic needs them
take them.

The signatures (results are the last array arguments; ``<conv>`` is
``stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w``,
``<im2col>`` is ``kernel_h, kernel_w, stride_h, stride_w, pad_top,
pad_bottom, pad_left, pad_right, dilation_h, dilation_w``, ``<pool>`` is
``pool_h, pool_w, stride_h, stride_w, pad_top, pad_left, dilation_h,
dilation_w``, ``<avg>`` is ``pool_h, pool_w, stride_h, stride_w, pad_top,
pad_bottom, pad_left, pad_right, count_include_pad``, ``<pads>`` is
``pad_top, pad_bottom, pad_left, pad_right``)::

    conv2d(x, w, b, y, <conv>)                   y = conv2d(x, w) + b
    conv2d_backward_input(dy, w, dx, <conv>)     dx (x's shape): input gradient
    conv2d_backward_filter(dy, x, dw, <conv>)    dw (w's shape): filter gradient
    conv2d_backward_bias(dy, db)                 db[c] = dy[..., c].sum()
    conv2d_transpose(x, w, b, y, <conv>)         y (N, H, W, C_in) = transpose(x (N, OH, OW, C_out)) + b;
                                                 output padding is y's extra size
    im2col(x, cols, <im2col>)                    cols (N * OH * OW, KH * KW * C), columns (kh, kw, c)
    col2im(cols, x, <im2col>)                    x (N, H, W, C): the adjoint of im2col
    max_pool2d(x, y, <pool>)                     y (N, OH, OW, C): window maxima, NaN propagates
    max_pool2d_argmax(x, y, argmax, <pool>)      and argmax (int64, flat h * W + w)
    max_pool2d_backward(dy, argmax, dx)          dx (N, H, W, C): dy added at argmax
    max_unpool2d(y, argmax, x)                   x (N, H, W, C): zeros, y written at argmax
    avg_pool2d(x, y, <avg>)                      y (N, OH, OW, C): window means
    avg_pool2d_backward(dy, dx, <avg>)           dx (N, H, W, C): its gradient
    adaptive_avg_pool2d(x, y)                    y (N, OH, OW, C): PyTorch's adaptive bins
    adaptive_avg_pool2d_backward(dy, dx)         dx (N, H, W, C): its gradient
    lrn(x, y, depth_radius, bias, alpha, beta)   TensorFlow's LRN
    lrn_backward(dy, x, dx, depth_radius, bias, alpha, beta)   its gradient
    output_shape_conv2d(x_shape, w_shape, stride_h, stride_w, <pads>, dilation_h, dilation_w)
                                                 (N, OH, OW, C_out)
    output_shape_conv2d_transpose(x_shape, w_shape, stride_h, stride_w, <pads>, dilation_h,
                                  dilation_w, output_padding_h, output_padding_w)
                                                 (N, OH, OW, C_in)
    output_shape_im2col(x_shape, <im2col>)       (N * OH * OW, KH * KW * C)
    output_shape_pool2d(x_shape, pool_h, pool_w, stride_h, stride_w, <pads>, dilation_h,
                        dilation_w, ceil_mode)   (N, OH, OW, C), max and average pooling
    same_padding(size, kernel, stride, dilation) TensorFlow's "SAME" (before, after) along one axis

Every function but the helpers has a ``*_serial`` twin with the same
arguments. The transposed convolution's gradients are ``conv2d(dy, w,
zeros, dx, ...)`` and ``conv2d_backward_filter(x, dy, dw, ...)`` (x and dy
swap roles) with the same geometry. ``argmax`` must come from
``max_pool2d_argmax`` of the same shapes.

Not covered: grouped and depthwise convolution (``groups=``; run
``conv2d`` per group on channel slices copied to C-contiguous arrays), the
NCHW layout, and dtypes other than float32/float64 (the public API casts;
here both arrays must already share a float dtype).

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

from ._fast.convolution import patch_grid as _patch_grid
from ._fast.normalization import _BLOCK_ELEMENTS
from ._fast.normalization import scale_range as _scale_range
from ._geometry import adaptive_bins as _adaptive_bins
from ._geometry import conv_out_size as _conv_out_size
from ._geometry import kernel_step as _kernel_step
from ._geometry import pool_out_size as _pool_out_size
from ._geometry import pool_windows as _pool_windows
from ._geometry import same_padding as _same_padding
from ._geometry import transpose_out_size as _transpose_out_size
from ._geometry import window_readers as _window_readers
from ._kernels.convolution import Image as _Image
from ._kernels.convolution import bias_backward_rows as _bias_backward_rows
from ._kernels.convolution import conv2d_backward_filter_nhwc as _conv2d_backward_filter_nhwc
from ._kernels.convolution import conv2d_nhwc as _conv2d_nhwc
from ._kernels.dots import conv2d_backward_filter_dots as _filter_dots
from ._kernels.dots import conv2d_dots as _conv2d_dots
from ._kernels.dots import conv2d_transpose_dots as _transpose_dots
from ._kernels.filter_taps import conv2d_backward_filter_taps as _filter_taps
from ._kernels.normalization import local_response_norm as _local_response_norm
from ._kernels.patch_gemm import OUT as _OUT
from ._kernels.patch_gemm import WK_HWIO as _WK_HWIO
from ._kernels.patch_gemm import WK_PANELS as _WK_PANELS
from ._kernels.patch_gemm import conv2d_backward_filter_patch_gemm as _filter_patch_gemm
from ._kernels.patch_gemm import conv2d_patch_gemm as _conv2d_patch_gemm
from ._kernels.patch_gemm import filter_gradient_rows as _filter_gradient_rows
from ._kernels.patch_gemm import pack_filters as _pack_filters
from ._kernels.patches import col2im_nhwc as _col2im_nhwc
from ._kernels.patches import im2col_nhwc as _im2col_nhwc
from ._kernels.pooling import avg_pool2d_nhwc as _avg_pool2d_nhwc
from ._kernels.pooling import max_pool2d_nhwc as _max_pool2d_nhwc
from ._kernels.pooling import scatter_at_argmax as _scatter_at_argmax
from ._kernels.winograd import conv2d_backward_filter_winograd as _filter_winograd
from ._kernels.winograd import conv2d_winograd as _conv2d_winograd
from ._kernels.winograd import filter_gradient_from_winograd as _filter_from_winograd
from ._kernels.winograd import transform_filters as _transform_filters
from ._numba import FASTMATH, kernel, launch_threads, serial
from ._plan import bias_parts as _bias_parts
from ._plan import bias_row_pixels as _bias_row_pixels
from ._plan import by_dots as _by_dots
from ._plan import by_winograd as _by_winograd
from ._plan import dots_filter_part as _dots_filter_part
from ._plan import dw_by_patches as _dw_by_patches
from ._plan import dw_by_taps as _dw_by_taps
from ._plan import dw_by_winograd as _dw_by_winograd
from ._plan import dw_patches_plan as _dw_patches_plan
from ._plan import dw_planes_plan as _dw_planes_plan
from ._plan import dw_swapped as _dw_swapped
from ._plan import dw_taps_plan as _dw_taps_plan
from ._plan import dw_winograd_plan as _dw_winograd_plan
from ._plan import filters_in_place as _filters_in_place
from ._plan import forward_by_patches as _forward_by_patches
from ._plan import padded_channels as _padded_channels
from ._plan import padded_rows as _padded_rows
from ._plan import panels_shape as _panels_shape
from ._plan import phase_rows as _phase_rows
from ._plan import phase_taps as _phase_taps
from ._plan import phases as _phases
from ._plan import plane_rows as _plane_rows
from ._plan import planes_fit as _planes_fit
from ._plan import winograd_units as _winograd_units

_OPS = [
    "conv2d", "conv2d_backward_input", "conv2d_backward_filter", "conv2d_backward_bias",
    "conv2d_transpose", "im2col", "col2im",
    "max_pool2d", "max_pool2d_argmax", "max_pool2d_backward", "max_unpool2d",
    "avg_pool2d", "avg_pool2d_backward", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "lrn", "lrn_backward",
]
__all__ = _OPS + [op + "_serial" for op in _OPS] + [
    "output_shape_conv2d", "output_shape_conv2d_transpose", "output_shape_im2col",
    "output_shape_pool2d", "same_padding",
]

launch_threads()  # see the module docstring (numba#9938)


# ------------------------------------------------------------------ shapes


@kernel(parallel=False)
def same_padding(size, kernel, stride, dilation):
    """TensorFlow's "SAME" padding along one axis: (before, after), the odd extra cell after."""
    return _same_padding(size, kernel, stride, dilation)


@kernel(parallel=False)
def output_shape_conv2d(x_shape, w_shape, stride_h, stride_w, pad_top, pad_bottom, pad_left,
                        pad_right, dilation_h, dilation_w):
    """(N, OH, OW, C_out) of ``conv2d`` on x of ``x_shape`` (NHWC) and w of ``w_shape`` (HWIO)."""
    return (x_shape[0],
            _conv_out_size(x_shape[1], w_shape[0], stride_h, dilation_h, pad_top, pad_bottom),
            _conv_out_size(x_shape[2], w_shape[1], stride_w, dilation_w, pad_left, pad_right),
            w_shape[3])


@kernel(parallel=False)
def output_shape_conv2d_transpose(x_shape, w_shape, stride_h, stride_w, pad_top, pad_bottom,
                                  pad_left, pad_right, dilation_h, dilation_w, output_padding_h,
                                  output_padding_w):
    """(N, OH, OW, C_in) of ``conv2d_transpose`` on x of ``x_shape`` (N, H, W, C_out), w of ``w_shape``."""
    return (x_shape[0],
            _transpose_out_size(x_shape[1], w_shape[0], stride_h, dilation_h, pad_top, pad_bottom,
                                output_padding_h),
            _transpose_out_size(x_shape[2], w_shape[1], stride_w, dilation_w, pad_left, pad_right,
                                output_padding_w),
            w_shape[2])


@kernel(parallel=False)
def output_shape_im2col(x_shape, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_bottom,
                        pad_left, pad_right, dilation_h, dilation_w):
    """(N * OH * OW, KH * KW * C) of ``im2col`` on x of ``x_shape`` (NHWC)."""
    oh = _conv_out_size(x_shape[1], kernel_h, stride_h, dilation_h, pad_top, pad_bottom)
    ow = _conv_out_size(x_shape[2], kernel_w, stride_w, dilation_w, pad_left, pad_right)
    return x_shape[0] * oh * ow, kernel_h * kernel_w * x_shape[3]


@kernel(parallel=False)
def output_shape_pool2d(x_shape, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom,
                        pad_left, pad_right, dilation_h, dilation_w, ceil_mode):
    """(N, OH, OW, C) of max or average pooling on x of ``x_shape`` (NHWC); PyTorch's ``ceil_mode``."""
    return (x_shape[0],
            _pool_out_size(x_shape[1], pool_h, stride_h, dilation_h, pad_top, pad_bottom, ceil_mode),
            _pool_out_size(x_shape[2], pool_w, stride_w, dilation_w, pad_left, pad_right, ceil_mode),
            x_shape[3])


# --------------------------------------------------- convolution drivers
#
# The nopython twins of ``numbaconv._fast.convolution``'s Python drivers:
# the same plan (``numbaconv._plan``) and the same kernels, on NHWC/HWIO
# arrays. Callees are called by plain global names (``_numba.serial``
# swaps them for their serial twins).


@kernel(parallel=False)
def _int64s(a, b, c, d, e, f):
    """Geometry as plain int64s (not literal types).

    Constants in the caller's code arrive as literal types, and Numba would
    compile the kernels again for every distinct value of a literal argument.
    """
    return np.int64(a), np.int64(b), np.int64(c), np.int64(d), np.int64(e), np.int64(f)


@kernel(parallel=False)
def _image(a):
    """The Image of a C-contiguous NHWC array (a view: writes reach ``a``)."""
    n, h, w, c = a.shape
    return _Image(a.reshape(-1), n, h, w, c, h * w * c, w * c, c, 1)


@kernel(parallel=False)
def _sub_filter(w, taps_h, taps_w, swap):
    """The C-contiguous HWIO filter of the taps: ``w[taps_h[a], taps_w[b]]``, I and O swapped when ``swap``."""
    n_in, n_out = (w.shape[3], w.shape[2]) if swap else (w.shape[2], w.shape[3])
    out = np.empty((taps_h.size, taps_w.size, n_in, n_out), w.dtype)
    for a in range(taps_h.size):
        for b in range(taps_w.size):
            tap = w[taps_h[a], taps_w[b]]
            for i in range(n_in):
                for o in range(n_out):
                    out[a, b, i, o] = tap[o, i] if swap else tap[i, o]
    return out


@kernel(parallel=False)
def _forward(x, w, b, y, taps_h, taps_w, swap, sh, sw, dh, dw, pt, pl):
    """y (an Image) = correlation of x (NHWC) with the filter taps (+ b), by the strategy the shape calls for.

    ``taps_h``, ``taps_w`` (int64) and ``swap`` select a sub-filter of the
    HWIO ``w`` (the stride phases of the input gradient: the filter with
    C_in and C_out swapped); the forward conv passes every tap.
    """
    k_h, k_w = taps_h.size, taps_w.size
    n_in = w.shape[3] if swap else w.shape[2]
    kh_, kw_, ci_, co_ = w.shape
    steps = (kw_ * ci_ * co_, ci_ * co_, co_, np.int64(1))
    if _by_dots(k_h, k_w, sh, sw, dw, n_in, y.c, y.h, y.w):
        rows = np.ascontiguousarray(_sub_filter(w, taps_h, taps_w, swap).transpose(3, 0, 1, 2))
        _conv2d_dots(_image(x), rows.reshape(y.c, k_h, k_w * n_in), b, y, sh, sw, dh, pt, pl)
        return
    if _by_winograd(k_h, k_w, sh, sw, dh, dw, n_in, y.c, y.n, y.h, y.w):
        u = np.zeros((16,) + _panels_shape(n_in, y.c), w.dtype)
        _transform_filters(w.reshape(-1), steps, taps_h, taps_w, swap, y.c, u)
        rows, cols, outs, units = _winograd_units(y.n, y.h, y.w, _padded_channels(y.c))
        bad = np.zeros(units, np.int64)
        _conv2d_winograd(_image(x), u, b, y, rows, cols, outs, pt, pl, bad)
        if bad.sum() == 0:
            return  # (else an output is not finite: recomputed below, as the public API does)
    if not _forward_by_patches(k_h, k_w, sh, sw, dh, dw, n_in, y.c, y.h, y.w, False):
        hwio = _sub_filter(w, taps_h, taps_w, swap)
        pitch = y.w + (k_w - 1) * dw // sw
        _conv2d_nhwc(_image(x), hwio, b, y, _plane_rows(y.n, y.h, pitch, hwio.size), sh, sw, dh, dw, pt, pl)
        return
    c_pad = _padded_channels(y.c)
    padded_rows = _padded_rows(k_h, k_w, sh, sw, dh, dw, y.w, c_pad)
    x_img, y, across, rows, outs = _patch_grid(_image(x), y, k_h, k_w, sh, sw, dh, dw, pt, pl, c_pad)
    # In place: the forward's own filter, every tap in order (an input-gradient phase swaps it).
    in_place = (not swap and k_h == kh_ and k_w == kw_ and taps_h[0] == 0 and taps_w[0] == 0
                and _filters_in_place(y.n, y.h, y.w, y.c, across, rows, False))
    if in_place:
        wk = w.reshape(k_h * k_w * n_in, y.c // _OUT, _OUT)
    else:
        wk = np.empty(_panels_shape(k_h * k_w * n_in, y.c), w.dtype)
        _pack_filters(w.reshape(-1), steps, taps_h, taps_w, swap, y.c, wk)
    layout = np.int64(_WK_HWIO if in_place else _WK_PANELS)  # (no literal: one compile)
    _conv2d_patch_gemm(x_img, wk, b, y, k_h, k_w, rows, outs, sh, sw, dh, dw, pt, pl, False, padded_rows, across,
                       layout)


@kernel(parallel=False)
def _transpose(x, w, b, y, sh, sw, pt, pl, dh, dw):
    """y (NHWC, C_in) = b + the adjoint of the forward conv of w applied to x (NHWC, C_out).

    The result splits into the stride phases ``(r, c)`` of its rows and
    columns; each phase is a stride-1 correlation of x with the swapped,
    reversed filter taps that reach it, written through a strided Image.
    """
    k_h, k_w = w.shape[0], w.shape[1]
    n, h, wd, c_in = y.shape
    img = _image(y)
    if _by_dots(k_h, k_w, sh, sw, dw, c_in, w.shape[3], x.shape[1], x.shape[2]):
        # Where the forward of this geometry goes by dots, so does its transpose (the public API's rule).
        rows = np.ascontiguousarray(w.transpose(3, 0, 1, 2)).reshape(w.shape[3], k_h, k_w * c_in)
        _transpose_dots(_image(x), rows, b, img, sh, sw, dh, pt, pl)
        return
    rows_phases, cols_phases = _phases(h, pt, sh), _phases(wd, pl, sw)
    unreached = False  # outputs that no tap reaches hold the bias alone
    for r in rows_phases:
        for c in cols_phases:
            if (_phase_rows(h, pt, sh, r)[1] > 0 and _phase_rows(wd, pl, sw, c)[1] > 0
                    and (_phase_taps(k_h, dh, sh, r)[0].size == 0
                         or _phase_taps(k_w, dw, sw, c)[0].size == 0)):
                unreached = True
    if unreached:
        for i in range(n):
            for j in range(h):
                for k in range(wd):
                    y[i, j, k, :] = b
    one = np.int64(1)  # not a literal: see _int64s
    for r in rows_phases:
        j0, rows = _phase_rows(h, pt, sh, r)
        taps_h, dil_h, shift_h = _phase_taps(k_h, dh, sh, r)
        for c in cols_phases:
            i0, cols = _phase_rows(wd, pl, sw, c)
            taps_w, dil_w, shift_w = _phase_taps(k_w, dw, sw, c)
            if rows == 0 or cols == 0 or taps_h.size == 0 or taps_w.size == 0:
                continue
            start = (j0 * sh + r - pt) * img.h_step + (i0 * sw + c - pl) * img.w_step
            phase = _Image(img.data[start:], n, rows, cols, c_in, img.n_step,
                           sh * img.h_step, sw * img.w_step, img.c_step)
            _forward(x, w, b, phase, taps_h, taps_w, np.bool_(True), one, one, np.int64(dil_h),
                     np.int64(dil_w), np.int64(shift_h - j0), np.int64(shift_w - i0))


@kernel(parallel=False)
def _steps(oh, ow, kh, kw, sh, sw, dh, dw):
    """The kernels' (sh, sw, dh, dw): 1 where they cannot change the answer (``_geometry.kernel_step``)."""
    sh, dh = _kernel_step(oh, kh, sh, dh)
    sw, dw = _kernel_step(ow, kw, sw, dw)
    return np.int64(sh), np.int64(sw), np.int64(dh), np.int64(dw)


@kernel(parallel=False)
def conv2d(x, w, b, y, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w):
    """y[n, oh, ow, o] = b[o] + sum(x[n, oh * stride_h - pad_top + kh * dilation_h, ..., i] * w[kh, kw, i, o])."""
    sh, sw, pt, pl, dh, dw = _int64s(stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w)
    sh, sw, dh, dw = _steps(y.shape[1], y.shape[2], w.shape[0], w.shape[1], sh, sw, dh, dw)
    _forward(x, w, b, _image(y), np.arange(w.shape[0]), np.arange(w.shape[1]), np.bool_(False),
             sh, sw, dh, dw, pt, pl)


@kernel(parallel=False)
def conv2d_transpose(x, w, b, y, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w):
    """y = b + the transposed convolution of x (N, OH, OW, C_out) into y (N, H, W, C_in)."""
    sh, sw, pt, pl, dh, dw = _int64s(stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w)
    sh, sw, dh, dw = _steps(x.shape[1], x.shape[2], w.shape[0], w.shape[1], sh, sw, dh, dw)
    _transpose(x, w, b, y, sh, sw, pt, pl, dh, dw)


@kernel(parallel=False)
def conv2d_backward_input(dy, w, dx, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w):
    """dx = the gradient of sum(conv2d(x, w) * dy) with respect to x (dx has x's shape)."""
    sh, sw, pt, pl, dh, dw = _int64s(stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w)
    sh, sw, dh, dw = _steps(dy.shape[1], dy.shape[2], w.shape[0], w.shape[1], sh, sw, dh, dw)
    _transpose(dy, w, np.zeros(w.shape[2], w.dtype), dx, sh, sw, pt, pl, dh, dw)


@kernel(parallel=False)
def conv2d_backward_filter(dy, x, dw, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w):
    """dw = the gradient of sum(conv2d(x, w) * dy) with respect to w (dw has w's shape, HWIO).

    By dots, Winograd (3x3, stride 1), taps, the plane kernel or, on short
    plane grids, the patch GEMM, by the public API's rules; the partial sums follow from
    the shape alone (bit-identical at any thread count).
    """
    sh, sw, pt, pl, dh, dw_ = _int64s(stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w)
    k_h, k_w, c_in, c_out = dw.shape
    n, oh, ow = dy.shape[0], dy.shape[1], dy.shape[2]
    sh, sw, dh, dw_ = _steps(oh, ow, k_h, k_w, sh, sw, dh, dw_)
    if _by_dots(k_h, k_w, sh, sw, dw_, c_in, c_out, oh, ow):
        row_len = k_w * c_in
        dwt = np.empty((c_out, k_h, row_len), dw.dtype)
        _filter_dots(_image(x), _image(dy), dwt, _dots_filter_part(k_h, row_len), sh, sw, dh, pt, pl)
        for a in range(k_h):
            for b in range(k_w):
                for i in range(c_in):
                    for o in range(c_out):
                        dw[a, b, i, o] = dwt[o, a, b * c_in + i]
        return
    if _dw_by_winograd(k_h, k_w, sh, sw, dh, dw_, c_in, c_out, n, oh, ow):
        rows, cols, parts, blocks, block_co, c_pad = _dw_winograd_plan(n, oh, ow, c_in, c_out)
        partial = np.empty((parts, blocks, 16, block_co, c_pad), dw.dtype)
        _filter_winograd(_image(x), _image(dy), partial, rows, cols, pt, pl)
        _filter_from_winograd(partial, dw.reshape(-1), 3, c_in, c_out, (3 * c_in * c_out, c_in * c_out, c_out, 1))
        if np.isfinite(dw).all():
            return  # (else a value is not finite: recomputed below, as the public API does)
    k_len = k_h * k_w * c_in
    flat = dw.reshape(k_len, c_out)
    if _dw_by_taps(n, oh, ow, k_h, k_w, sh, sw, dh, dw_, c_in, c_out):
        k_pad, c_pad, parts, chunk_rows = _dw_taps_plan(n, oh, ow, k_h, k_w, c_in, c_out)
        partial = np.empty((parts, k_pad, c_pad), dw.dtype)
        _filter_taps(_image(x), _image(dy), partial, k_h, k_w, chunk_rows, sh, sw, dh, dw_, pt, pl)
        c_tap = k_pad // (k_h * k_w)  # partial's rows per tap: C_in padded
        for k in range(k_len):
            for co in range(c_out):
                flat[k, co] = _sum_parts(partial, k // c_in * c_tap + k % c_in, co)
        return
    if (not _dw_by_patches(n, oh, ow, k_h, k_w, sh, sw, dw_, c_in, c_out)
            and _planes_fit(k_h, k_w, sh, sw, dh, dw_)):
        parts, rows = _dw_planes_plan(n, oh, ow, k_w, sw, dw_, k_h * k_w * c_in * c_out)
        _conv2d_backward_filter_nhwc(_image(x), _image(dy), dw, parts, rows, sh, sw, dh, dw_, pt, pl)
        return
    swapped = _dw_swapped(n, k_h, k_w, sh, sw, pt, pl, x.shape[1], x.shape[2], oh, ow, c_in, c_out, False)
    if swapped:
        # dw^T = dy^T @ x, as the public API (numbaconv._plan.dw_swapped).
        k_pad, c_pad, parts, k_block, chunk = _dw_patches_plan(n, oh, ow, 1, 1, c_out, c_in)
        partial = np.empty((parts, k_pad, c_pad), dw.dtype)
        img = _image(x)
        pixels = _Image(img.data, n, oh, ow, c_in, img.n_step, sh * img.h_step, sw * img.w_step,
                        img.c_step)
        # (int64 values: literals could type the call apart, a compile of its own.)
        one, zero = np.int64(1), np.int64(0)
        dy_img = _image(dy)
        rows = _filter_gradient_rows(dy_img, pixels, one, one, one, one, zero, zero, False)
        _filter_patch_gemm(dy_img, pixels, partial, one, one, k_block, c_pad, chunk, one, one, one, one,
                           zero, zero, False, rows)
    else:
        k_pad, c_pad, parts, k_block, chunk = _dw_patches_plan(n, oh, ow, k_h, k_w, c_in, c_out)
        partial = np.empty((parts, k_pad, c_pad), dw.dtype)
        x_img, dy_img = _image(x), _image(dy)
        rows = _filter_gradient_rows(x_img, dy_img, k_h, k_w, sh, sw, pt, pl, False)
        _filter_patch_gemm(x_img, dy_img, partial, k_h, k_w, k_block, c_pad, chunk,
                           sh, sw, dh, dw_, pt, pl, False, rows)
    for k in range(k_len):
        for co in range(c_out):
            flat[k, co] = _sum_parts(partial, co, k) if swapped else _sum_parts(partial, k, co)


# Without "reassoc": LLVM may not regroup the sum (it did, in a 4-part fold
# of conv2d_backward_filter).
@kernel(parallel=False, fastmath=FASTMATH - {"reassoc"})
def _sum_parts(partial, i, j):
    """partial[0, i, j] + partial[1, i, j] + ..., in order: as the Python drivers' ``sum(axis=0)``."""
    total = partial[0, i, j]
    for part in range(1, partial.shape[0]):
        total += partial[part, i, j]
    return total


@kernel(parallel=False)
def conv2d_backward_bias(dy, db):
    """db[c] = sum of dy[n, oh, ow, c] over n, oh, ow."""
    n, oh, ow, c = dy.shape
    m = _bias_row_pixels(n * oh * ow, ow, c)  # the public API's rows (bit-identical sums)
    rows = dy.reshape(n * oh * ow // m, m * c)
    _bias_backward_rows(rows, db, np.int64(1), _bias_parts(rows.shape[0]))


# ----------------------------------------------------------------- patches


@kernel(parallel=False)
def _patch_geometry(h, w, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right,
                    dilation_h, dilation_w):
    """(oh, ow, kh, kw, sh, sw, dh, dw) of im2col/col2im on an (h, w) plane, as the kernels take them."""
    kh, kw, sh, sw, dh, dw = _int64s(kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w)
    oh = _conv_out_size(h, kh, sh, dh, pad_top, pad_bottom)
    ow = _conv_out_size(w, kw, sw, dw, pad_left, pad_right)
    sh, sw, dh, dw = _steps(oh, ow, kh, kw, sh, sw, dh, dw)
    return oh, ow, kh, kw, sh, sw, dh, dw


@kernel(parallel=False)
def im2col(x, cols, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_bottom, pad_left,
           pad_right, dilation_h, dilation_w):
    """cols[(n, oh, ow), (kh, kw, c)] = x[n, oh * stride_h - pad_top + kh * dilation_h, ..., c] (0 on padding)."""
    oh, ow, kh, kw, sh, sw, dh, dw = _patch_geometry(x.shape[1], x.shape[2], kernel_h, kernel_w, stride_h,
                                                     stride_w, pad_top, pad_bottom, pad_left, pad_right,
                                                     dilation_h, dilation_w)
    _im2col_nhwc(x, cols, oh, ow, kh, kw, sh, sw, dh, dw, np.int64(pad_top), np.int64(pad_left))


@kernel(parallel=False)
def col2im(cols, x, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_bottom, pad_left,
           pad_right, dilation_h, dilation_w):
    """x = the adjoint of im2col: every cols entry summed into the pixel it was read from."""
    oh, ow, kh, kw, sh, sw, dh, dw = _patch_geometry(x.shape[1], x.shape[2], kernel_h, kernel_w, stride_h,
                                                     stride_w, pad_top, pad_bottom, pad_left, pad_right,
                                                     dilation_h, dilation_w)
    _col2im_nhwc(cols, x, oh, ow, kh, kw, sh, sw, dh, dw, np.int64(pad_top), np.int64(pad_left))


# ----------------------------------------------------------------- pooling


@kernel(parallel=False)
def max_pool2d(x, y, pool_h, pool_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w):
    """y[n, oh, ow, c] = the maximum of x over the window (padding never wins; NaN propagates)."""
    kh, kw, sh, sw, pt, pl = _int64s(pool_h, pool_w, stride_h, stride_w, pad_top, pad_left)
    sh, sw, dh, dw = _steps(y.shape[1], y.shape[2], kh, kw, sh, sw, dilation_h, dilation_w)
    # An empty argmax: the kernel tracks none.
    _max_pool2d_nhwc(x, kh, kw, sh, sw, dh, dw, pt, pl, x.dtype.type(1), y,
                     np.empty((0, 0, 0, 0), np.int64))


@kernel(parallel=False)
def max_pool2d_argmax(x, y, argmax, pool_h, pool_w, stride_h, stride_w, pad_top, pad_left,
                      dilation_h, dilation_w):
    """max_pool2d, and argmax[n, oh, ow, c] = h * W + w of the first maximum of the window."""
    kh, kw, sh, sw, pt, pl = _int64s(pool_h, pool_w, stride_h, stride_w, pad_top, pad_left)
    sh, sw, dh, dw = _steps(y.shape[1], y.shape[2], kh, kw, sh, sw, dilation_h, dilation_w)
    _max_pool2d_nhwc(x, kh, kw, sh, sw, dh, dw, pt, pl, x.dtype.type(1), y, argmax)


@kernel(parallel=False)
def max_pool2d_backward(dy, argmax, dx):
    """dx = zeros, then dx[n, argmax[n, oh, ow, c], c] += dy[n, oh, ow, c] (dx viewed as (N, H * W, C))."""
    n, h, w, c = dx.shape
    q = dy.shape[1] * dy.shape[2] * c
    _scatter_at_argmax(dy.reshape(n, q), argmax.reshape(n, q), c, np.bool_(True), dx.reshape(n, h * w * c))


@kernel(parallel=False)
def max_unpool2d(y, argmax, x):
    """x = zeros, then x[n, argmax[n, oh, ow, c], c] = y[n, oh, ow, c] (the last in row-major order wins)."""
    n, h, w, c = x.shape
    q = y.shape[1] * y.shape[2] * c
    _scatter_at_argmax(y.reshape(n, q), argmax.reshape(n, q), c, np.bool_(False), x.reshape(n, h * w * c))


@kernel(parallel=False)
def _avg_axes(h, w, oh, ow, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left,
              pad_right, count_include_pad):
    """The windows of both axes as ``_geometry.pool_windows`` (start, stop, divisor)."""
    cip = bool(count_include_pad)
    return (_pool_windows(h, oh, pool_h, stride_h, pad_top, pad_bottom, cip),
            _pool_windows(w, ow, pool_w, stride_w, pad_left, pad_right, cip))


@kernel(parallel=False)
def avg_pool2d(x, y, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right,
               count_include_pad):
    """y[n, oh, ow, c] = the mean of x over the window (divided as the public ``count_include_pad``)."""
    rows, cols = _avg_axes(x.shape[1], x.shape[2], y.shape[1], y.shape[2], pool_h, pool_w, stride_h,
                           stride_w, pad_top, pad_bottom, pad_left, pad_right, count_include_pad)
    _avg_pool2d_nhwc(x, rows[0], rows[1], (1 / rows[2]).astype(x.dtype),
                     cols[0], cols[1], (1 / cols[2]).astype(x.dtype), np.bool_(False), y)


@kernel(parallel=False)
def avg_pool2d_backward(dy, dx, pool_h, pool_w, stride_h, stride_w, pad_top, pad_bottom, pad_left,
                        pad_right, count_include_pad):
    """dx = the gradient of sum(avg_pool2d(x) * dy) with respect to x."""
    h, w = dx.shape[1], dx.shape[2]
    rows, cols = _avg_axes(h, w, dy.shape[1], dy.shape[2], pool_h, pool_w, stride_h, stride_w,
                           pad_top, pad_bottom, pad_left, pad_right, count_include_pad)
    r_first, r_stop = _window_readers(rows[0], rows[1], h)
    c_first, c_stop = _window_readers(cols[0], cols[1], w)
    _avg_pool2d_nhwc(dy, r_first, r_stop, (1 / rows[2]).astype(dy.dtype),
                     c_first, c_stop, (1 / cols[2]).astype(dy.dtype), np.bool_(True), dx)


@kernel(parallel=False)
def adaptive_avg_pool2d(x, y):
    """y[n, i, j, c] = the mean of x over PyTorch's adaptive bin (i, j) (y's shape sets the bins)."""
    rows, cols = _adaptive_bins(x.shape[1], y.shape[1]), _adaptive_bins(x.shape[2], y.shape[2])
    _avg_pool2d_nhwc(x, rows[0], rows[1], (1 / rows[2]).astype(x.dtype),
                     cols[0], cols[1], (1 / cols[2]).astype(x.dtype), np.bool_(False), y)


@kernel(parallel=False)
def adaptive_avg_pool2d_backward(dy, dx):
    """dx = the gradient of sum(adaptive_avg_pool2d(x) * dy) with respect to x."""
    h, w = dx.shape[1], dx.shape[2]
    rows, cols = _adaptive_bins(h, dy.shape[1]), _adaptive_bins(w, dy.shape[2])
    r_first, r_stop = _window_readers(rows[0], rows[1], h)
    c_first, c_stop = _window_readers(cols[0], cols[1], w)
    _avg_pool2d_nhwc(dy, r_first, r_stop, (1 / rows[2]).astype(dy.dtype),
                     c_first, c_stop, (1 / cols[2]).astype(dy.dtype), np.bool_(True), dx)


# --------------------------------------------------------------------- LRN


@kernel(parallel=False)
def _lrn_run(dy, x, out, backward, depth_radius, bias, alpha, beta):
    """One LRN kernel call (forward or backward) in x's dtype; returns the per-job outside counts and the job length."""
    c = x.shape[3]
    radius = np.int64(min(depth_radius, c - 1))
    t = x.dtype.type
    bias, alpha, beta = float(bias), float(alpha), float(beta)
    lo, hi = _scale_range(x.itemsize, radius, bias, alpha, beta)
    block = np.int64(max(_BLOCK_ELEMENTS // c, 1))
    per_job = block * c
    outside = np.empty(-(-x.size // per_job), np.int64)
    _local_response_norm(dy.reshape(-1), x.reshape(-1), 1, c, False, backward, radius, t(bias), t(alpha),
                         t(beta), t(2 * alpha * beta), t(lo), t(hi), block, out.reshape(-1), outside)
    return outside, per_job


@kernel(parallel=False)
def _lrn(dy, x, out, backward, depth_radius, bias, alpha, beta):
    """LRN or its gradient into ``out``; float32 blocks out of float32's accurate range redone in float64."""
    if x.size == 0:
        return
    outside, per_job = _lrn_run(dy, x, out, backward, depth_radius, bias, alpha, beta)
    if x.itemsize == 8 or outside.sum() == 0:
        return
    wide = np.empty(x.shape, np.float64)
    _lrn_run(dy.astype(np.float64), x.astype(np.float64), wide, backward, depth_radius, bias,
             alpha, beta)
    flat, wide_flat = out.reshape(-1), wide.reshape(-1)
    for job in range(outside.size):
        if outside[job] > 0:
            for i in range(job * per_job, min((job + 1) * per_job, flat.size)):
                flat[i] = wide_flat[i]


@kernel(parallel=False)
def lrn(x, y, depth_radius, bias, alpha, beta):
    """y = x / (bias + alpha * sum of x ** 2 over channels c - r .. c + r) ** beta (TensorFlow's LRN)."""
    _lrn(x, x, y, np.bool_(False), depth_radius, bias, alpha, beta)


@kernel(parallel=False)
def lrn_backward(dy, x, dx, depth_radius, bias, alpha, beta):
    """dx = the gradient of sum(lrn(x) * dy) with respect to x."""
    _lrn(dy, x, dx, np.bool_(True), depth_radius, bias, alpha, beta)


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
max_unpool2d_serial = serial(max_unpool2d)
avg_pool2d_serial = serial(avg_pool2d)
avg_pool2d_backward_serial = serial(avg_pool2d_backward)
adaptive_avg_pool2d_serial = serial(adaptive_avg_pool2d)
adaptive_avg_pool2d_backward_serial = serial(adaptive_avg_pool2d_backward)
lrn_serial = serial(lrn)
lrn_backward_serial = serial(lrn_backward)
