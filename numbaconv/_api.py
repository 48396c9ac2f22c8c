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

Every core also takes ``out=None``: when given, an NHWC/HWIO-indexed view
(a tuple for ``max_pool2d_argmax``) of the caller's validated result buffer,
which the core fills and returns (:func:`writes_into` makes a core that
allocates into one that copies into ``out``). Cores may assume validated
arguments, must not modify their inputs and, without ``out``, must return
fresh arrays. ``nchw`` is the only layout information a core gets: the
layout is decided here, once per call (:func:`_nchw`), and never re-detected
from strides.
"""
import functools
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
#
# ``out``: the caller's result buffer(s), validated (``_validate.out_array``)
# before any core runs, and passed to the core as an NHWC/HWIO-indexed view
# of the caller's memory; the public function then returns ``out`` itself.
# The _conv*_core helpers dispatch on groups: the plain cores take
# groups == 1, the grouped ones everything else.


def _view(out, fmt):
    """An NHWC-indexed view of a caller's result buffer (None stays None)."""
    return None if out is None else v.to_nhwc(out, fmt)


def _filter_view(out, fmt):
    return None if out is None else v.filters_to_hwio(out, fmt)


def _result(y, out, fmt):
    """What a public function returns: ``out`` when given (the core wrote into it), else y in the caller's layout."""
    return out if out is not None else v.from_nhwc(y, fmt)


def _conv_core(backend, x, w, b, g, groups, nchw, out):
    if groups == 1:
        return backend.conv2d(x, w, b, g, nchw, out=out)
    return backend.grouped_conv2d(x, w, b, g, groups, nchw, out=out)


def _transpose_core(backend, x, w, b, g, groups, nchw, out):
    if groups == 1:
        return backend.conv2d_transpose(x, w, b, g, nchw, out=out)
    return backend.grouped_conv2d_transpose(x, w, b, g, groups, nchw, out=out)


def _filter_core(backend, x, dy, g, groups, nchw, out):
    if groups == 1:
        return backend.conv2d_backward_filter(x, dy, g, nchw, out=out)
    return backend.grouped_conv2d_backward_filter(x, dy, g, groups, nchw, out=out)


def conv2d(backend, x, w, b, stride, padding, dilation, groups, data_format, out=None):
    a = v.conv2d(x, w, b, stride, padding, dilation, data_format, groups=groups)
    fmt = a.data_format
    shape = v.from_nhwc_shape((a.x.shape[0], a.g.oh, a.g.ow, a.w.shape[3]), fmt)
    out = v.out_array(out, "out", shape, a.x.dtype, {"x": x, "w": w, "b": b})
    y = _conv_core(backend, a.x, a.w, a.b, a.g, a.groups, _nchw(a), _view(out, fmt))
    return _result(y, out, fmt)


def _gradients(backend, a, out, inputs, dx_core, dw_inputs):
    """(dx, dw, db) of conv2d_backward and conv2d_transpose_backward, into ``out`` when given."""
    nchw, fmt = _nchw(a), a.data_format
    outs = None
    if out is not None:
        w_shape = a.w.shape if fmt == "NHWC" else (a.w.shape[3], a.w.shape[2], a.w.shape[0], a.w.shape[1])
        outs = v.out_arrays(out, [
            ("dx", v.from_nhwc_shape(a.x.shape, fmt), a.x.dtype),
            ("dw", w_shape, a.x.dtype),
            ("db", (a.dy.shape[3],), a.x.dtype),
        ], inputs)
    dx_out, dw_out, db_out = outs if outs is not None else (None, None, None)
    dx = dx_core(backend, a.dy, a.w, None, a.g, a.groups, nchw, _view(dx_out, fmt))
    dw_x, dw_dy = dw_inputs
    dw = _filter_core(backend, dw_x, dw_dy, a.g, a.groups, nchw, _filter_view(dw_out, fmt))
    db = backend.bias_backward(a.dy, nchw, out=db_out)
    if outs is not None:
        return out
    return v.from_nhwc(dx, fmt), v.filters_from_hwio(dw, fmt), np.ascontiguousarray(db)


def conv2d_backward(backend, dy, x, w, stride, padding, dilation, groups, data_format, out=None):
    a = v.conv2d(x, w, None, stride, padding, dilation, data_format, dy=dy, groups=groups)
    return _gradients(backend, a, out, {"dy": dy, "x": x, "w": w}, _transpose_core, (a.x, a.dy))


def conv2d_backward_input(backend, dy, w, x_shape, stride, padding, dilation, groups, data_format,
                          out=None):
    a = v.conv2d_backward_input(dy, w, x_shape, stride, padding, dilation, groups, data_format)
    fmt = a.data_format
    shape = v.from_nhwc_shape((a.dy.shape[0], a.g.h, a.g.w, a.w.shape[2] * a.groups), fmt)
    out = v.out_array(out, "out", shape, a.dy.dtype, {"dy": dy, "w": w})
    dx = _transpose_core(backend, a.dy, a.w, None, a.g, a.groups, _nchw(a), _view(out, fmt))
    return _result(dx, out, fmt)


def conv2d_backward_filter(backend, dy, x, w_shape, stride, padding, dilation, groups, data_format,
                           out=None):
    a = v.conv2d_backward_filter(dy, x, w_shape, stride, padding, dilation, groups, data_format)
    fmt = a.data_format
    hwio = (a.g.kh, a.g.kw, a.x.shape[3] // a.groups, a.dy.shape[3])
    shape = hwio if fmt == "NHWC" else (hwio[3], hwio[2], hwio[0], hwio[1])
    out = v.out_array(out, "out", shape, a.x.dtype, {"dy": dy, "x": x})
    dw = _filter_core(backend, a.x, a.dy, a.g, a.groups, _nchw(a), _filter_view(out, fmt))
    return out if out is not None else v.filters_from_hwio(dw, fmt)


def conv2d_transpose(backend, x, w, b, stride, padding, output_padding, dilation, groups,
                     data_format, out=None):
    a = v.conv2d_transpose(x, w, b, stride, padding, output_padding, dilation, data_format,
                           groups=groups)
    fmt = a.data_format
    shape = v.from_nhwc_shape((a.x.shape[0], a.g.h, a.g.w, a.w.shape[2] * a.groups), fmt)
    out = v.out_array(out, "out", shape, a.x.dtype, {"x": x, "w": w, "b": b})
    y = _transpose_core(backend, a.x, a.w, a.b, a.g, a.groups, _nchw(a), _view(out, fmt))
    return _result(y, out, fmt)


def conv2d_transpose_backward(backend, dy, x, w, stride, padding, output_padding, dilation, groups,
                              data_format, out=None):
    a = v.conv2d_transpose(x, w, None, stride, padding, output_padding, dilation,
                           data_format, dy=dy, groups=groups)
    # The forward conv of this geometry maps dy's plane onto x's plane.
    return _gradients(backend, a, out, {"dy": dy, "x": x, "w": w}, _conv_core, (a.dy, a.x))


# ---------------------------------------------------------------- patches


def im2col(backend, x, kernel_size, stride, padding, dilation, data_format, out=None):
    a = v.im2col(x, kernel_size, stride, padding, dilation, data_format)
    shape = (a.n * a.g.oh * a.g.ow, a.g.kh * a.g.kw * a.c)
    out = v.out_array(out, "out", shape, a.data.dtype, {"x": x})
    cols = backend.im2col(a.data, a.g, _nchw(a), out=out)
    return out if out is not None else np.ascontiguousarray(cols)


def col2im(backend, cols, x_shape, kernel_size, stride, padding, dilation, data_format, out=None):
    a = v.col2im(cols, x_shape, kernel_size, stride, padding, dilation, data_format)
    fmt = a.data_format
    shape = v.from_nhwc_shape((a.n, a.g.h, a.g.w, a.c), fmt)
    out = v.out_array(out, "out", shape, a.data.dtype, {"cols": cols})
    return _result(backend.col2im(a.data, a.n, a.c, a.g, _nchw(a), out=_view(out, fmt)), out, fmt)


# ---------------------------------------------------------------- pooling


def _pool_out(out, a, inputs):
    shape = v.from_nhwc_shape((a.x.shape[0], a.g.oh, a.g.ow, a.x.shape[3]), a.data_format)
    return v.out_array(out, "out", shape, a.x.dtype, inputs)


def _plane_out(out, a, dy, h, w, inputs):
    """The buffer of a result of x's shape (N, H, W, C) for pooling backwards (NHWC-indexed ``dy``)."""
    shape = v.from_nhwc_shape((dy.shape[0], h, w, dy.shape[3]), a.data_format)
    return v.out_array(out, "out", shape, dy.dtype, inputs)


def max_pool2d(backend, x, pool_size, stride, padding, dilation, ceil_mode, data_format, out=None):
    a = v.max_pool2d(x, pool_size, stride, padding, dilation, ceil_mode, data_format)
    out = _pool_out(out, a, {"x": x})
    return _result(backend.max_pool2d(a.x, a.g, _nchw(a), out=_view(out, a.data_format)), out,
                   a.data_format)


def max_pool2d_argmax(backend, x, pool_size, stride, padding, dilation, ceil_mode, data_format,
                      out=None):
    a = v.max_pool2d(x, pool_size, stride, padding, dilation, ceil_mode, data_format)
    fmt = a.data_format
    shape = v.from_nhwc_shape((a.x.shape[0], a.g.oh, a.g.ow, a.x.shape[3]), fmt)
    outs = v.out_arrays(out, [("y", shape, a.x.dtype), ("argmax", shape, np.dtype(np.int64))],
                        {"x": x})
    views = None if outs is None else (_view(outs[0], fmt), _view(outs[1], fmt))
    y, argmax = backend.max_pool2d_argmax(a.x, a.g, _nchw(a), out=views)
    if outs is not None:
        return out
    return v.from_nhwc(y, fmt), v.from_nhwc(argmax, fmt)


def max_pool2d_backward(backend, dy, argmax, x_shape, data_format, out=None):
    a = v.max_pool2d_backward(dy, argmax, x_shape, data_format)
    out = _plane_out(out, a, a.dy, a.h, a.w, {"dy": dy, "argmax": argmax})
    dx = backend.max_pool2d_backward(a.dy, a.argmax, a.h, a.w, _nchw(a), out=_view(out, a.data_format))
    return _result(dx, out, a.data_format)


def max_unpool2d(backend, y, argmax, x_shape, data_format, out=None):
    a = v.max_unpool2d(y, argmax, x_shape, data_format)
    out = _plane_out(out, a, a.dy, a.h, a.w, {"y": y, "argmax": argmax})
    x = backend.max_unpool2d(a.dy, a.argmax, a.h, a.w, _nchw(a), out=_view(out, a.data_format))
    return _result(x, out, a.data_format)


def avg_pool2d(backend, x, pool_size, stride, padding, ceil_mode, count_include_pad, data_format,
               out=None):
    a = v.avg_pool2d(x, pool_size, stride, padding, ceil_mode, count_include_pad, data_format)
    out = _pool_out(out, a, {"x": x})
    y = backend.avg_pool2d(a.x, a.g, a.count_include_pad, _nchw(a), out=_view(out, a.data_format))
    return _result(y, out, a.data_format)


def avg_pool2d_backward(backend, dy, x_shape, pool_size, stride, padding, ceil_mode,
                        count_include_pad, data_format, out=None):
    a = v.avg_pool2d_backward(dy, x_shape, pool_size, stride, padding, ceil_mode,
                              count_include_pad, data_format)
    out = _plane_out(out, a, a.x, a.g.h, a.g.w, {"dy": dy})
    dx = backend.avg_pool2d_backward(a.x, a.g, a.count_include_pad, _nchw(a),
                                     out=_view(out, a.data_format))
    return _result(dx, out, a.data_format)


def adaptive_avg_pool2d(backend, x, output_size, data_format, out=None):
    a = v.adaptive_avg_pool2d(x, output_size, data_format)
    shape = v.from_nhwc_shape((a.x.shape[0], a.oh, a.ow, a.x.shape[3]), a.data_format)
    out = v.out_array(out, "out", shape, a.x.dtype, {"x": x})
    y = backend.adaptive_avg_pool2d(a.x, a.oh, a.ow, _nchw(a), out=_view(out, a.data_format))
    return _result(y, out, a.data_format)


def adaptive_avg_pool2d_backward(backend, dy, x_shape, data_format, out=None):
    a = v.adaptive_avg_pool2d_backward(dy, x_shape, data_format)
    out = _plane_out(out, a, a.x, a.h, a.w, {"dy": dy})
    dx = backend.adaptive_avg_pool2d_backward(a.x, a.h, a.w, _nchw(a), out=_view(out, a.data_format))
    return _result(dx, out, a.data_format)


# ------------------------------------------------------------------- LRN


def lrn(backend, x, depth_radius, bias, alpha, beta, data_format, out=None):
    a = v.lrn(x, depth_radius, bias, alpha, beta, data_format)
    out = v.out_array(out, "out", v.from_nhwc_shape(a.x.shape, a.data_format), a.x.dtype, {"x": x})
    y = backend.lrn(a.x, a.depth_radius, a.bias, a.alpha, a.beta, _nchw(a),
                    out=_view(out, a.data_format))
    return _result(y, out, a.data_format)


def lrn_backward(backend, dy, x, depth_radius, bias, alpha, beta, data_format, out=None):
    a = v.lrn(x, depth_radius, bias, alpha, beta, data_format, dy=dy)
    out = v.out_array(out, "out", v.from_nhwc_shape(a.x.shape, a.data_format), a.x.dtype,
                      {"dy": dy, "x": x})
    dx = backend.lrn_backward(a.dy, a.x, a.depth_radius, a.bias, a.alpha, a.beta, _nchw(a),
                              out=_view(out, a.data_format))
    return _result(dx, out, a.data_format)


def writes_into(core: Core) -> Core:
    """A core that takes ``out=`` and writes its result(s) there, from one that allocates.

    For cores with no cheaper way (the NumPy reference's, the grouped
    drivers): the result is computed as usual and copied into ``out`` (an
    array, or a tuple for a core with several results).
    """
    @functools.wraps(core)  # keeps the core's name and module
    def with_out(*args, out=None):
        result = core(*args)
        if out is None:
            return result
        if isinstance(out, tuple):
            for o, r in zip(out, result, strict=True):
                o[...] = r
        else:
            out[...] = result
        return out
    return with_out


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
