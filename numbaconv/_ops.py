"""The public API, written once and bound to a backend.

``numbaconv`` (Numba kernels) and ``numbaconv.reference`` (NumPy) expose the
same functions with the same signatures: both are an :class:`Ops` over a
different set of NHWC cores. Each method validates (``_validate``), calls the
backend on NHWC/HWIO arrays of the compute dtype, and returns results in the
caller's layout.

A backend provides these NHWC cores (``g`` is a ``_validate.Geometry``):

- ``conv2d(x, w, b, g) -> y``: cross-correlation, ``b`` may be None.
- ``conv2d_transpose(x, w, b, g) -> y``: its adjoint (also conv2d's dx).
- ``conv2d_backward_filter(x, dy, g) -> dw``.
- ``bias_backward(dy) -> db``: sum over N, H, W.
- ``im2col(x, g) -> cols``; ``col2im(cols, n, c, g) -> x``.
- ``max_pool2d(x, g) -> y``; ``max_pool2d_argmax(x, g) -> (y, argmax)``;
  ``max_pool2d_backward(dy, argmax, h, w) -> dx``.
- ``lrn(x, depth_radius, bias, alpha, beta) -> y``;
  ``lrn_backward(dy, x, depth_radius, bias, alpha, beta) -> dx``.

Cores may assume validated arguments, must not modify their inputs and must
return fresh arrays.
"""
import numpy as np

from . import _validate as v

CORES = (
    "conv2d", "conv2d_transpose", "conv2d_backward_filter", "bias_backward",
    "im2col", "col2im", "max_pool2d", "max_pool2d_argmax", "max_pool2d_backward",
    "lrn", "lrn_backward",
)


class Ops:
    """The contract's functions over one backend's NHWC cores."""

    def __init__(self, *modules):
        """Take each core from the first of ``modules`` that defines it."""
        self._core = {}
        for name in CORES:
            found = [getattr(m, name) for m in modules if hasattr(m, name)]
            if not found:
                raise TypeError(f"no backend module defines the core {name!r}")
            self._core[name] = found[0]

    # ------------------------------------------------------------ convolution

    def conv2d(self, x, w, b=None, *, stride=1, padding=0, dilation=1, data_format="NHWC"):
        """2-D cross-correlation plus bias (TensorFlow's and PyTorch's conv2d).

        Parameters
        ----------
        x : array_like of shape (N, H, W, C_in) (NHWC) or (N, C_in, H, W) (NCHW)
        w : array_like of shape (KH, KW, C_in, C_out) (HWIO, with NHWC)
            or (C_out, C_in, KH, KW) (OIHW, with NCHW)
        b : array_like of shape (C_out,), optional
        stride, dilation : int or (int, int), each >= 1
        padding : 'SAME', 'VALID', int, (ph, pw) or ((top, bottom), (left, right))
            'SAME' follows TensorFlow: the odd extra row/column goes at the bottom/right.
        data_format : 'NHWC' (default) or 'NCHW'

        Returns
        -------
        y : ndarray of shape (N, OH, OW, C_out) (NHWC) or (N, C_out, OH, OW) (NCHW)
            ``OH = (H + top + bottom - dilation * (KH - 1) - 1) // stride + 1``.
            dtype ``np.result_type(x, w, b, np.float32)``.
        """
        a = v.conv2d(x, w, b, stride, padding, dilation, data_format)
        return v.from_nhwc(self._core["conv2d"](a.x, a.w, a.b, a.g), a.data_format)

    def conv2d_backward(self, dy, x, w, *, stride=1, padding=0, dilation=1, data_format="NHWC"):
        """Gradients of ``sum(conv2d(x, w, b) * dy)`` with respect to x, w and b.

        ``dy`` has the shape of ``conv2d``'s output; the other arguments are
        those of the forward call. Returns ``(dx, dw, db)`` shaped like x, w
        and ``(C_out,)`` (db is returned even when the forward had no bias).
        """
        a = v.conv2d(x, w, None, stride, padding, dilation, data_format, dy=dy)
        core = self._core
        dx = core["conv2d_transpose"](a.dy, a.w, None, a.g)
        dw = core["conv2d_backward_filter"](a.x, a.dy, a.g)
        return (
            v.from_nhwc(dx, a.data_format),
            v.filters_from_hwio(dw, a.data_format),
            np.ascontiguousarray(core["bias_backward"](a.dy)),
        )

    def conv2d_transpose(self, x, w, b=None, *, stride=1, padding=0, output_padding=0,
                         dilation=1, data_format="NHWC"):
        """Transposed convolution: the adjoint of ``conv2d`` with the same w and geometry.

        Parameters
        ----------
        x : array_like of shape (N, H, W, C_out) (NHWC) or (N, C_out, H, W) (NCHW)
            It has the channel count of the forward conv's *output*.
        w : array_like, the forward conv's filters (HWIO with NHWC, OIHW with NCHW)
        b : array_like of shape (C_in,), optional
        stride, dilation : int or (int, int)
        padding : int, (ph, pw) or ((top, bottom), (left, right)); also 'VALID'
            (no padding) and 'SAME' (output = input * stride, TensorFlow's rule).
        output_padding : int or (int, int)
            Extra rows/columns at the bottom/right; each must be smaller than the
            stride or the dilation along its axis (PyTorch's rule).

        Returns
        -------
        y : ndarray of shape (N, OH, OW, C_in) (NHWC) or (N, C_in, OH, OW) (NCHW)
            ``OH = (H - 1) * stride - top - bottom + dilation * (KH - 1) + 1 + output_padding``.
        """
        a = v.conv2d_transpose(x, w, b, stride, padding, output_padding, dilation, data_format)
        return v.from_nhwc(self._core["conv2d_transpose"](a.x, a.w, a.b, a.g), a.data_format)

    def conv2d_transpose_backward(self, dy, x, w, *, stride=1, padding=0, output_padding=0,
                                  dilation=1, data_format="NHWC"):
        """Gradients of ``sum(conv2d_transpose(x, w, b) * dy)`` w.r.t. x, w and b.

        Returns ``(dx, dw, db)`` shaped like x, w and ``(C_in,)``.
        """
        a = v.conv2d_transpose(x, w, None, stride, padding, output_padding, dilation,
                               data_format, dy=dy)
        core = self._core
        # The forward conv of this geometry maps dy's plane onto x's plane.
        dx = core["conv2d"](a.dy, a.w, None, a.g)
        dw = core["conv2d_backward_filter"](a.dy, a.x, a.g)
        return (
            v.from_nhwc(dx, a.data_format),
            v.filters_from_hwio(dw, a.data_format),
            np.ascontiguousarray(core["bias_backward"](a.dy)),
        )

    # ---------------------------------------------------------------- patches

    def im2col(self, x, kernel_size, *, stride=1, padding=0, dilation=1, data_format="NHWC"):
        """Patches of x as rows: shape ``(N * OH * OW, KH * KW * C)``.

        Rows are in (n, oh, ow) order and columns in (kh, kw, c) order, for
        both data formats; padded positions read as zero.
        """
        a = v.im2col(x, kernel_size, stride, padding, dilation, data_format)
        return np.ascontiguousarray(self._core["im2col"](a.data, a.g))

    def col2im(self, cols, x_shape, kernel_size, *, stride=1, padding=0, dilation=1,
               data_format="NHWC"):
        """The exact adjoint of ``im2col``: patches summed back into an array of ``x_shape``.

        Overlapping patches add up; entries that fall on padding are dropped.
        """
        a = v.col2im(cols, x_shape, kernel_size, stride, padding, dilation, data_format)
        return v.from_nhwc(self._core["col2im"](a.data, a.n, a.c, a.g), a.data_format)

    # ---------------------------------------------------------------- pooling

    def max_pool2d(self, x, pool_size, *, stride=None, padding=0, data_format="NHWC"):
        """Max pooling over windows of ``pool_size`` (``stride=None`` means ``pool_size``).

        Padded positions never win; a NaN in a window makes that output NaN.
        Each explicit padding side must be smaller than the window.
        """
        a = v.max_pool2d(x, pool_size, stride, padding, data_format)
        return v.from_nhwc(self._core["max_pool2d"](a.x, a.g), a.data_format)

    def max_pool2d_argmax(self, x, pool_size, *, stride=None, padding=0, data_format="NHWC"):
        """Max pooling that also returns where each maximum came from.

        Returns
        -------
        y : ndarray, as ``max_pool2d``
        argmax : int64 ndarray of y's shape
            Flat index ``h * W + w`` into the unpadded (H, W) plane of the same
            sample and channel (PyTorch's convention). Ties go to the first
            maximum in row-major window order; a NaN wins (the first NaN).
        """
        a = v.max_pool2d(x, pool_size, stride, padding, data_format)
        y, argmax = self._core["max_pool2d_argmax"](a.x, a.g)
        return v.from_nhwc(y, a.data_format), v.from_nhwc(argmax, a.data_format)

    def max_pool2d_backward(self, dy, argmax, x_shape, *, data_format="NHWC"):
        """Route each ``dy`` entry to its argmax in an array of ``x_shape``; overlaps add up."""
        a = v.max_pool2d_backward(dy, argmax, x_shape, data_format)
        dx = self._core["max_pool2d_backward"](a.dy, a.argmax, a.h, a.w)
        return v.from_nhwc(dx, a.data_format)

    # ------------------------------------------------------------------- LRN

    def lrn(self, x, *, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, data_format="NHWC"):
        """Local response normalization across channels (TensorFlow's semantics).

        ``sqr_sum[c] = sum(x[c'] ** 2 for c' in [c - r, c + r] clipped to the channels)``,
        ``y[c] = x[c] / (bias + alpha * sqr_sum[c]) ** beta``.
        PyTorch's ``LocalResponseNorm(size, alpha, beta, k)`` (odd size) is
        ``depth_radius=(size - 1) // 2, alpha=alpha / size, bias=k``.
        """
        a = v.lrn(x, depth_radius, bias, alpha, beta, data_format)
        y = self._core["lrn"](a.x, a.depth_radius, a.bias, a.alpha, a.beta)
        return v.from_nhwc(y, a.data_format)

    def lrn_backward(self, dy, x, *, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5,
                     data_format="NHWC"):
        """Gradient of ``sum(lrn(x) * dy)`` with respect to x."""
        a = v.lrn(x, depth_radius, bias, alpha, beta, data_format, dy=dy)
        dx = self._core["lrn_backward"](a.dy, a.x, a.depth_radius, a.bias, a.alpha, a.beta)
        return v.from_nhwc(dx, a.data_format)

    def bind(self, namespace):
        """Put the public functions into a module namespace (``globals()``)."""
        for name in PUBLIC:
            namespace[name] = getattr(self, name)


PUBLIC = (
    "conv2d", "conv2d_backward", "conv2d_transpose", "conv2d_transpose_backward",
    "im2col", "col2im", "max_pool2d", "max_pool2d_argmax", "max_pool2d_backward",
    "lrn", "lrn_backward",
)
