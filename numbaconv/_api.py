"""The public functions' bodies, written once over a backend's table of cores.

``numbaconv`` (Numba kernels) and ``numbaconv.reference`` (NumPy) define
their public functions as plain module-level functions with the same
signature; each one calls the body here with its own :class:`Backend`. A body
validates (``_validate``), calls the backend's cores on NHWC/HWIO arrays of
the compute dtype and returns results in the caller's layout.

The core interface (``g`` is a ``_validate.Geometry``; every array argument
is indexed NHWC or HWIO, and ``nchw`` says whether the caller's data format is
NCHW, i.e. whether the NHWC-indexed data are views of NCHW arrays):

- ``conv2d(x, w, b, g, nchw) -> y``: cross-correlation, ``b`` may be None.
- ``conv2d_transpose(x, w, b, g, nchw) -> y``: its adjoint (also conv2d's dx).
- ``conv2d_backward_filter(x, dy, g, nchw) -> dw``.
- ``bias_backward(dy, nchw) -> db``: sum over N, H, W.
- ``grouped_conv2d(x, w, b, g, groups, nchw)``,
  ``grouped_conv2d_transpose(x, w, b, g, groups, nchw)`` and
  ``grouped_conv2d_backward_filter(x, dy, g, groups, nchw)``: the same with
  ``groups > 1`` (w is ``(KH, KW, C_in // groups, C_out)``; output channel o
  reads the input channels of group ``o // (C_out // groups)``). Called only
  with ``groups > 1``: ``groups == 1`` goes to the plain cores.
- ``im2col(x, g, nchw) -> cols``; ``col2im(cols, n, c, g, nchw) -> x``.
- ``max_pool2d(x, g, nchw) -> y``; ``max_pool2d_argmax(x, g, nchw) -> (y, argmax)``;
  ``max_pool2d_backward(dy, argmax, h, w, nchw) -> dx``;
  ``max_unpool2d(y, argmax, h, w, nchw) -> x``. ``g`` carries dilation, and
  ``ceil_mode`` through its output size.
- ``avg_pool2d(x, g, count_include_pad, nchw) -> y``;
  ``avg_pool2d_backward(dy, g, count_include_pad, nchw) -> dx``.
- ``adaptive_avg_pool2d(x, oh, ow, nchw) -> y``;
  ``adaptive_avg_pool2d_backward(dy, h, w, nchw) -> dx``.
- ``lrn(x, depth_radius, bias, alpha, beta, nchw) -> y``;
  ``lrn_backward(dy, x, depth_radius, bias, alpha, beta, nchw) -> dx``.

Cores may assume validated arguments, must not modify their inputs and must
return fresh arrays. ``nchw`` is the only layout information a core gets: the
layout is decided here, once per call (:func:`_nchw`), and never re-detected
from strides.
"""
import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np

from . import _validate as v

# Annotations of the public signatures (numbers are validated, not just typed:
# NumPy integers are accepted too).
IntOrPair = int | tuple[int, int]
Padding = str | int | tuple[int, int] | tuple[tuple[int, int], tuple[int, int]]
Shape4 = Sequence[int]
Gradients = tuple[np.ndarray, np.ndarray, np.ndarray]

Core = Callable[..., Any]


class Backend(NamedTuple):
    """One implementation's cores (see the module docstring for their signatures)."""

    conv2d: Core
    conv2d_transpose: Core
    conv2d_backward_filter: Core
    bias_backward: Core
    grouped_conv2d: Core
    grouped_conv2d_transpose: Core
    grouped_conv2d_backward_filter: Core
    im2col: Core
    col2im: Core
    max_pool2d: Core
    max_pool2d_argmax: Core
    max_pool2d_backward: Core
    lrn: Core
    lrn_backward: Core
    max_unpool2d: Core
    avg_pool2d: Core
    avg_pool2d_backward: Core
    adaptive_avg_pool2d: Core
    adaptive_avg_pool2d_backward: Core


def _nchw(args):
    """Make the one layout decision of a call: True when the caller's data are NCHW."""
    return args.data_format == "NCHW"


# ------------------------------------------------------------ convolution
# The _conv*_core helpers dispatch on groups: the plain cores take
# groups == 1, the grouped ones everything else.


def _conv_core(backend, x, w, b, g, groups, nchw):
    if groups == 1:
        return backend.conv2d(x, w, b, g, nchw)
    return backend.grouped_conv2d(x, w, b, g, groups, nchw)


def _transpose_core(backend, x, w, b, g, groups, nchw):
    if groups == 1:
        return backend.conv2d_transpose(x, w, b, g, nchw)
    return backend.grouped_conv2d_transpose(x, w, b, g, groups, nchw)


def _filter_core(backend, x, dy, g, groups, nchw):
    if groups == 1:
        return backend.conv2d_backward_filter(x, dy, g, nchw)
    return backend.grouped_conv2d_backward_filter(x, dy, g, groups, nchw)


def conv2d(backend, x, w, b, stride, padding, dilation, groups, data_format):
    a = v.conv2d(x, w, b, stride, padding, dilation, data_format, groups=groups)
    y = _conv_core(backend, a.x, a.w, a.b, a.g, a.groups, _nchw(a))
    return v.from_nhwc(y, a.data_format)


def conv2d_backward(backend, dy, x, w, stride, padding, dilation, groups, data_format):
    a = v.conv2d(x, w, None, stride, padding, dilation, data_format, dy=dy, groups=groups)
    nchw = _nchw(a)
    dx = _transpose_core(backend, a.dy, a.w, None, a.g, a.groups, nchw)
    dw = _filter_core(backend, a.x, a.dy, a.g, a.groups, nchw)
    return (
        v.from_nhwc(dx, a.data_format),
        v.filters_from_hwio(dw, a.data_format),
        np.ascontiguousarray(backend.bias_backward(a.dy, nchw)),
    )


def conv2d_backward_input(backend, dy, w, x_shape, stride, padding, dilation, groups, data_format):
    a = v.conv2d_backward_input(dy, w, x_shape, stride, padding, dilation, groups, data_format)
    dx = _transpose_core(backend, a.dy, a.w, None, a.g, a.groups, _nchw(a))
    return v.from_nhwc(dx, a.data_format)


def conv2d_backward_filter(backend, dy, x, w_shape, stride, padding, dilation, groups, data_format):
    a = v.conv2d_backward_filter(dy, x, w_shape, stride, padding, dilation, groups, data_format)
    dw = _filter_core(backend, a.x, a.dy, a.g, a.groups, _nchw(a))
    return v.filters_from_hwio(dw, a.data_format)


def conv2d_transpose(backend, x, w, b, stride, padding, output_padding, dilation, groups,
                     data_format):
    a = v.conv2d_transpose(x, w, b, stride, padding, output_padding, dilation, data_format,
                           groups=groups)
    y = _transpose_core(backend, a.x, a.w, a.b, a.g, a.groups, _nchw(a))
    return v.from_nhwc(y, a.data_format)


def conv2d_transpose_backward(backend, dy, x, w, stride, padding, output_padding, dilation, groups,
                              data_format):
    a = v.conv2d_transpose(x, w, None, stride, padding, output_padding, dilation,
                           data_format, dy=dy, groups=groups)
    nchw = _nchw(a)
    # The forward conv of this geometry maps dy's plane onto x's plane.
    dx = _conv_core(backend, a.dy, a.w, None, a.g, a.groups, nchw)
    dw = _filter_core(backend, a.dy, a.x, a.g, a.groups, nchw)
    return (
        v.from_nhwc(dx, a.data_format),
        v.filters_from_hwio(dw, a.data_format),
        np.ascontiguousarray(backend.bias_backward(a.dy, nchw)),
    )


# ---------------------------------------------------------------- patches


def im2col(backend, x, kernel_size, stride, padding, dilation, data_format):
    a = v.im2col(x, kernel_size, stride, padding, dilation, data_format)
    return np.ascontiguousarray(backend.im2col(a.data, a.g, _nchw(a)))


def col2im(backend, cols, x_shape, kernel_size, stride, padding, dilation, data_format):
    a = v.col2im(cols, x_shape, kernel_size, stride, padding, dilation, data_format)
    return v.from_nhwc(backend.col2im(a.data, a.n, a.c, a.g, _nchw(a)), a.data_format)


# ---------------------------------------------------------------- pooling


def max_pool2d(backend, x, pool_size, stride, padding, dilation, ceil_mode, data_format):
    a = v.max_pool2d(x, pool_size, stride, padding, dilation, ceil_mode, data_format)
    return v.from_nhwc(backend.max_pool2d(a.x, a.g, _nchw(a)), a.data_format)


def max_pool2d_argmax(backend, x, pool_size, stride, padding, dilation, ceil_mode, data_format):
    a = v.max_pool2d(x, pool_size, stride, padding, dilation, ceil_mode, data_format)
    y, argmax = backend.max_pool2d_argmax(a.x, a.g, _nchw(a))
    return v.from_nhwc(y, a.data_format), v.from_nhwc(argmax, a.data_format)


def max_pool2d_backward(backend, dy, argmax, x_shape, data_format):
    a = v.max_pool2d_backward(dy, argmax, x_shape, data_format)
    dx = backend.max_pool2d_backward(a.dy, a.argmax, a.h, a.w, _nchw(a))
    return v.from_nhwc(dx, a.data_format)


def max_unpool2d(backend, y, argmax, x_shape, data_format):
    a = v.max_unpool2d(y, argmax, x_shape, data_format)
    return v.from_nhwc(backend.max_unpool2d(a.dy, a.argmax, a.h, a.w, _nchw(a)), a.data_format)


def avg_pool2d(backend, x, pool_size, stride, padding, ceil_mode, count_include_pad, data_format):
    a = v.avg_pool2d(x, pool_size, stride, padding, ceil_mode, count_include_pad, data_format)
    y = backend.avg_pool2d(a.x, a.g, a.count_include_pad, _nchw(a))
    return v.from_nhwc(y, a.data_format)


def avg_pool2d_backward(backend, dy, x_shape, pool_size, stride, padding, ceil_mode,
                        count_include_pad, data_format):
    a = v.avg_pool2d_backward(dy, x_shape, pool_size, stride, padding, ceil_mode,
                              count_include_pad, data_format)
    dx = backend.avg_pool2d_backward(a.x, a.g, a.count_include_pad, _nchw(a))
    return v.from_nhwc(dx, a.data_format)


def adaptive_avg_pool2d(backend, x, output_size, data_format):
    a = v.adaptive_avg_pool2d(x, output_size, data_format)
    return v.from_nhwc(backend.adaptive_avg_pool2d(a.x, a.oh, a.ow, _nchw(a)), a.data_format)


def adaptive_avg_pool2d_backward(backend, dy, x_shape, data_format):
    a = v.adaptive_avg_pool2d_backward(dy, x_shape, data_format)
    dx = backend.adaptive_avg_pool2d_backward(a.x, a.h, a.w, _nchw(a))
    return v.from_nhwc(dx, a.data_format)


# ------------------------------------------------------------------- LRN


def lrn(backend, x, depth_radius, bias, alpha, beta, data_format):
    a = v.lrn(x, depth_radius, bias, alpha, beta, data_format)
    y = backend.lrn(a.x, a.depth_radius, a.bias, a.alpha, a.beta, _nchw(a))
    return v.from_nhwc(y, a.data_format)


def lrn_backward(backend, dy, x, depth_radius, bias, alpha, beta, data_format):
    a = v.lrn(x, depth_radius, bias, alpha, beta, data_format, dy=dy)
    dx = backend.lrn_backward(a.dy, a.x, a.depth_radius, a.bias, a.alpha, a.beta,
                              _nchw(a))
    return v.from_nhwc(dx, a.data_format)


# --------------------------------------------------- the public functions

F = TypeVar("F", bound=Callable[..., Any])


def public(module: str) -> Callable[[F], F]:
    """Decorate a public function defined in a private module: it belongs to ``module``.

    ``help()``, reprs and pickling then name it where users find it
    (``numbaconv.conv2d``, not ``numbaconv._functions.conv2d``), as NumPy's
    ``set_module`` does.
    """
    def set_module(fn: F) -> F:
        fn.__module__ = module
        return fn
    return set_module


def reference_of(fast: Callable[..., Any]) -> Callable[[F], F]:
    """Decorate a ``numbaconv.reference`` function: its docs are those of ``fast``.

    The signature must be the same as ``fast``'s (checked at import: a
    mismatch is a TypeError, not a silent difference between the two
    namespaces). The docstring is ``fast``'s, with a line saying which
    implementation this is, and with the Examples calling
    ``nc.reference.<op>`` instead of ``nc.<op>``, so that the doctests run
    this implementation against the same expected output.
    """
    def document(ref: F) -> F:
        if inspect.signature(ref) != inspect.signature(fast):
            raise TypeError(
                f"numbaconv.reference.{ref.__name__}{inspect.signature(ref)} differs from "
                f"numbaconv.{fast.__name__}{inspect.signature(fast)}"
            )
        summary, _, rest = (fast.__doc__ or "").partition("\n")
        examples_start = rest.find("Examples\n")
        if examples_start >= 0:
            examples = rest[examples_start:].replace(f"nc.{fast.__name__}(",
                                                     f"nc.reference.{fast.__name__}(")
            rest = rest[:examples_start] + examples
        ref.__module__ = "numbaconv.reference"
        ref.__doc__ = (
            f"{summary}\n\n    NumPy reference implementation of :func:`numbaconv.{fast.__name__}`: "
            "same signature,\n    validation and results (to float tolerance).\n" + rest
        )
        return ref
    return document
