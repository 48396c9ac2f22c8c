"""Argument validation and normalization, shared by the kernels, the reference and compat.

Every public op goes through one function here before any computation. It
turns array-likes into arrays of the compute dtype, brings data to NHWC and
filters to HWIO, resolves stride/dilation/padding to ints, checks every shape
and returns the geometry the computation needs. Nothing past this module
validates, and no kernel sees an argument that could make it index out of
bounds.
"""
import numbers
import operator
from typing import NamedTuple

import numpy as np

from . import _geometry

DATA_FORMATS = ("NHWC", "NCHW")


class Geometry(NamedTuple):
    """One sliding-window op on an (h, w) plane, all sizes resolved to ints."""

    h: int  # input plane, unpadded
    w: int
    oh: int  # output plane
    ow: int
    kh: int  # window
    kw: int
    sh: int  # stride
    sw: int
    dh: int  # dilation
    dw: int
    pt: int  # padding: top, bottom, left, right
    pb: int
    pl: int
    pr: int


class ConvArgs(NamedTuple):
    """Normalized conv arguments: data in NHWC, filters in HWIO, one compute dtype."""

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    dy: np.ndarray | None
    g: Geometry
    data_format: str


class PoolArgs(NamedTuple):
    x: np.ndarray
    g: Geometry
    data_format: str


class PoolBackwardArgs(NamedTuple):
    dy: np.ndarray
    argmax: np.ndarray
    h: int
    w: int
    data_format: str


class PatchArgs(NamedTuple):
    data: np.ndarray  # x (NHWC) for im2col, cols for col2im
    n: int
    c: int
    g: Geometry
    data_format: str


class LRNArgs(NamedTuple):
    x: np.ndarray
    dy: np.ndarray | None
    depth_radius: int
    bias: float
    alpha: float
    beta: float
    data_format: str


# ---------------------------------------------------------------- primitives


def data_format(value):
    """'NHWC' or 'NCHW' in any case."""
    if not isinstance(value, str):
        raise TypeError(f"data_format must be 'NHWC' or 'NCHW', got {value!r}")
    fmt = value.upper()
    if fmt not in DATA_FORMATS:
        raise ValueError(f"data_format must be 'NHWC' or 'NCHW' (any case), got {value!r}")
    return fmt


def array(value, name):
    """An array-like of real numbers as an ndarray (no copy when it already is one)."""
    arr = _asarray(value, name)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers (bool, int or float); got dtype {arr.dtype}"
        )
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        raise TypeError(f"{name} has dtype {arr.dtype}; cast it to float64 (the widest supported)")
    return arr


def _asarray(value, name):
    try:
        return np.asarray(value)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} is not a rectangular array: {err}") from None


def compute_dtype(*arrays):
    """The contract's dtype rule: np.result_type(data arrays, float32)."""
    return np.result_type(*arrays, np.float32)


def integer(value, name, minimum):
    """A Python/NumPy integer >= minimum (bool and float are refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    value = operator.index(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def int_pair(value, name, minimum):
    """An int or a pair (h, w) of ints, each >= minimum, as a pair."""
    if isinstance(value, (tuple, list, np.ndarray)):
        items = list(np.asarray(value, dtype=object).ravel()) if isinstance(value, np.ndarray) else list(value)
        if len(items) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        return tuple(integer(v, f"{name}[{i}]", minimum) for i, v in enumerate(items))
    v = integer(value, name, minimum)
    return v, v


def padding_spec(value, name="padding"):
    """'SAME', 'VALID', or explicit (top, bottom, left, right) ints >= 0."""
    if isinstance(value, str):
        mode = value.upper()
        if mode not in ("SAME", "VALID"):
            raise ValueError(
                f"{name} must be 'SAME', 'VALID', an int, a pair (ph, pw) or "
                f"((top, bottom), (left, right)); got {value!r}"
            )
        return mode
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (tuple, list)) for v in value
    ):
        (top, bottom), (left, right) = (int_pair(v, f"{name}[{i}]", 0) for i, v in enumerate(value))
        return top, bottom, left, right
    if isinstance(value, (tuple, list)) and any(isinstance(v, (tuple, list)) for v in value):
        raise ValueError(
            f"{name} must be an int, a pair (ph, pw) or ((top, bottom), (left, right)); got {value!r}"
        )
    ph, pw = int_pair(value, name, 0)
    return ph, ph, pw, pw


def resolve_padding(spec, h, w, kh, kw, sh, sw, dh, dw):
    """Explicit (top, bottom, left, right) for a padding spec on an (h, w) input."""
    if spec == "VALID":
        return 0, 0, 0, 0
    if spec == "SAME":
        return _geometry.same_padding(h, kh, sh, dh) + _geometry.same_padding(w, kw, sw, dw)
    return spec


def window_geometry(h, w, kh, kw, stride, dilation, padding, what):
    """Geometry of a window sliding over (h, w); ValueError if the output is empty."""
    sh, sw = stride
    dh, dw = dilation
    pt, pb, pl, pr = resolve_padding(padding, h, w, kh, kw, sh, sw, dh, dw)
    oh = _geometry.conv_out_size(h, kh, sh, dh, pt, pb)
    ow = _geometry.conv_out_size(w, kw, sw, dw, pl, pr)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"{what} gives an empty output ({oh}, {ow}): input (H, W)=({h}, {w}), "
            f"window ({kh}, {kw}), stride ({sh}, {sw}), dilation ({dh}, {dw}), "
            f"padding (top, bottom, left, right)=({pt}, {pb}, {pl}, {pr})"
        )
    return Geometry(h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr)


def ndim4(arr, name, fmt):
    if arr.ndim != 4:
        raise ValueError(f"{name} must be 4-D ({fmt}), got shape {arr.shape}")
    return arr


def shape4(value, name, fmt):
    """A 4-tuple of ints >= 0 (an input shape given by the caller)."""
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of 4 ints ({fmt}), got {value!r}") from None
    if len(items) != 4:
        raise ValueError(f"{name} must have 4 entries ({fmt}), got {value!r}")
    return tuple(integer(v, f"{name}[{i}]", 0) for i, v in enumerate(items))


# ------------------------------------------------------------------- layouts


def to_nhwc(arr, fmt):
    return arr if fmt == "NHWC" else arr.transpose(0, 2, 3, 1)


def from_nhwc(arr, fmt):
    """A result in the caller's layout, always C-contiguous (no copy if it already is)."""
    return np.ascontiguousarray(arr if fmt == "NHWC" else arr.transpose(0, 3, 1, 2))


def nhwc_shape(shape, fmt):
    return shape if fmt == "NHWC" else (shape[0], shape[2], shape[3], shape[1])


def filters_to_hwio(w, fmt):
    return w if fmt == "NHWC" else w.transpose(2, 3, 1, 0)


def filters_from_hwio(w, fmt):
    return np.ascontiguousarray(w if fmt == "NHWC" else w.transpose(3, 2, 0, 1))


def _filter_name(fmt):
    return "(KH, KW, C_in, C_out) HWIO" if fmt == "NHWC" else "(C_out, C_in, KH, KW) OIHW"


# -------------------------------------------------------------------- ops


def _conv_common(x, w, b, dy, fmt, x_name):
    fmt = data_format(fmt)
    arrays = {x_name: array(x, x_name), "w": array(w, "w")}
    if b is not None:
        arrays["b"] = array(b, "b")
    if dy is not None:
        arrays["dy"] = array(dy, "dy")
    dtype = compute_dtype(*arrays.values())
    ndim4(arrays[x_name], x_name, fmt)
    w_arr = arrays["w"]
    if w_arr.ndim != 4:
        raise ValueError(f"w must be 4-D {_filter_name(fmt)}, got shape {w_arr.shape}")
    cast = {k: np.asarray(v, dtype=dtype) for k, v in arrays.items()}
    w_hwio = filters_to_hwio(cast["w"], fmt)
    kh, kw = w_hwio.shape[:2]
    if kh == 0 or kw == 0:
        raise ValueError(f"w has an empty kernel window ({kh}, {kw}): shape {w_arr.shape}")
    return fmt, cast, w_hwio


def _check_channels(arr_nhwc, name, expected, w_shape, role, fmt):
    if arr_nhwc.shape[3] != expected:
        raise ValueError(
            f"{name} has {arr_nhwc.shape[3]} channels but w of shape {w_shape} "
            f"({_filter_name(fmt)}) expects {role}={expected}"
        )


def _check_bias(b, c, name_c):
    if b is None:
        return None
    if b.ndim != 1 or b.shape[0] != c:
        raise ValueError(f"b must have shape ({c},) ({name_c}), got {b.shape}")
    return b


def _check_dy(dy_nhwc, expected_nhwc, fmt, what):
    if dy_nhwc.shape != expected_nhwc:
        raise ValueError(
            f"dy has shape {from_nhwc_shape(dy_nhwc.shape, fmt)} but {what} has shape "
            f"{from_nhwc_shape(expected_nhwc, fmt)} ({fmt})"
        )


def from_nhwc_shape(shape, fmt):
    return shape if fmt == "NHWC" else (shape[0], shape[3], shape[1], shape[2])


def conv2d(x, w, b, stride, padding, dilation, fmt, dy=None):
    """conv2d and conv2d_backward: x (N, H, W, C_in) -> y (N, OH, OW, C_out)."""
    fmt, a, w_hwio = _conv_common(x, w, b, dy, fmt, "x")
    stride = int_pair(stride, "stride", 1)
    dilation = int_pair(dilation, "dilation", 1)
    pad = padding_spec(padding)
    x_nhwc = to_nhwc(a["x"], fmt)
    kh, kw, ci, co = w_hwio.shape
    _check_channels(x_nhwc, "x", ci, a["w"].shape, "C_in", fmt)
    n, h, wd, _ = x_nhwc.shape
    g = window_geometry(h, wd, kh, kw, stride, dilation, pad, "conv2d")
    dy_nhwc = None
    if dy is not None:
        dy_nhwc = to_nhwc(ndim4(a["dy"], "dy", fmt), fmt)
        _check_dy(dy_nhwc, (n, g.oh, g.ow, co), fmt, "the conv2d output")
    return ConvArgs(x_nhwc, w_hwio, _check_bias(a.get("b"), co, "C_out"), dy_nhwc, g, fmt)


def conv2d_transpose(x, w, b, stride, padding, output_padding, dilation, fmt, dy=None):
    """conv2d_transpose(_backward): x (N, H, W, C_out) -> y (N, OH, OW, C_in).

    The geometry returned is that of the forward conv2d whose output has x's
    plane: g.h, g.w is the transposed output, g.oh, g.ow the transposed input.
    """
    fmt, a, w_hwio = _conv_common(x, w, b, dy, fmt, "x")
    sh, sw = int_pair(stride, "stride", 1)
    dh, dw = int_pair(dilation, "dilation", 1)
    oph, opw = int_pair(output_padding, "output_padding", 0)
    for op, s, d, axis in ((oph, sh, dh, "height"), (opw, sw, dw, "width")):
        if op >= s and op >= d:
            raise ValueError(
                f"output_padding must be smaller than the stride or the dilation along "
                f"{axis}: got output_padding={op}, stride={s}, dilation={d}"
            )
    pad = padding_spec(padding)
    x_nhwc = to_nhwc(a["x"], fmt)
    kh, kw, ci, co = w_hwio.shape
    _check_channels(x_nhwc, "x", co, a["w"].shape, "C_out", fmt)
    n, ih, iw, _ = x_nhwc.shape
    if pad == "SAME":
        if oph or opw:
            raise ValueError(
                f"output_padding={output_padding!r} needs explicit padding; with 'SAME' "
                "the output is input * stride (TensorFlow's rule)"
            )
        oh, ow = ih * sh, iw * sw
        pads = _geometry.same_padding(oh, kh, sh, dh) + _geometry.same_padding(ow, kw, sw, dw)
    else:
        pads = resolve_padding(pad, 0, 0, kh, kw, sh, sw, dh, dw)
        pt, pb, pl, pr = pads
        oh = _geometry.transpose_out_size(ih, kh, sh, dh, pt, pb, oph)
        ow = _geometry.transpose_out_size(iw, kw, sw, dw, pl, pr, opw)
    if oh < 1 or ow < 1 or ih < 1 or iw < 1:
        raise ValueError(
            f"conv2d_transpose gives an empty output ({oh}, {ow}): input (H, W)=({ih}, {iw}), "
            f"window ({kh}, {kw}), stride ({sh}, {sw}), dilation ({dh}, {dw}), "
            f"padding (top, bottom, left, right)={pads}, output_padding=({oph}, {opw})"
        )
    g = Geometry(oh, ow, ih, iw, kh, kw, sh, sw, dh, dw, *pads)
    dy_nhwc = None
    if dy is not None:
        dy_nhwc = to_nhwc(ndim4(a["dy"], "dy", fmt), fmt)
        _check_dy(dy_nhwc, (n, oh, ow, ci), fmt, "the conv2d_transpose output")
    return ConvArgs(x_nhwc, w_hwio, _check_bias(a.get("b"), ci, "C_in"), dy_nhwc, g, fmt)


def im2col(x, kernel_size, stride, padding, dilation, fmt):
    fmt = data_format(fmt)
    x_arr = ndim4(array(x, "x"), "x", fmt)
    x_nhwc = to_nhwc(np.asarray(x_arr, dtype=compute_dtype(x_arr)), fmt)
    n, h, w, c = x_nhwc.shape
    kh, kw = int_pair(kernel_size, "kernel_size", 1)
    g = window_geometry(
        h, w, kh, kw, int_pair(stride, "stride", 1), int_pair(dilation, "dilation", 1),
        padding_spec(padding), "im2col",
    )
    return PatchArgs(x_nhwc, n, c, g, fmt)


def col2im(cols, x_shape, kernel_size, stride, padding, dilation, fmt):
    fmt = data_format(fmt)
    cols_arr = array(cols, "cols")
    n, h, w, c = nhwc_shape(shape4(x_shape, "x_shape", fmt), fmt)
    kh, kw = int_pair(kernel_size, "kernel_size", 1)
    g = window_geometry(
        h, w, kh, kw, int_pair(stride, "stride", 1), int_pair(dilation, "dilation", 1),
        padding_spec(padding), "col2im",
    )
    expected = (n * g.oh * g.ow, kh * kw * c)
    if cols_arr.shape != expected:
        raise ValueError(
            f"cols must have shape (N*H_out*W_out, KH*KW*C)={expected} for x_shape "
            f"{tuple(x_shape)} ({fmt}) and kernel ({kh}, {kw}); got {cols_arr.shape}"
        )
    return PatchArgs(np.asarray(cols_arr, dtype=compute_dtype(cols_arr)), n, c, g, fmt)


def max_pool2d(x, pool_size, stride, padding, fmt):
    fmt = data_format(fmt)
    x_arr = ndim4(array(x, "x"), "x", fmt)
    x_nhwc = to_nhwc(np.asarray(x_arr, dtype=compute_dtype(x_arr)), fmt)
    kh, kw = int_pair(pool_size, "pool_size", 1)
    stride = (kh, kw) if stride is None else int_pair(stride, "stride", 1)
    pad = padding_spec(padding)
    if isinstance(pad, tuple):
        pt, pb, pl, pr = pad
        if max(pt, pb) >= kh or max(pl, pr) >= kw:
            raise ValueError(
                f"max pool padding must be smaller than the window on each side: "
                f"padding (top, bottom, left, right)={pad}, pool_size=({kh}, {kw})"
            )
    _, h, w, _ = x_nhwc.shape
    if h == 0 or w == 0:
        raise ValueError(f"x has an empty (H, W) plane ({h}, {w}): every pooling window would be all padding")
    return PoolArgs(x_nhwc, window_geometry(h, w, kh, kw, stride, (1, 1), pad, "max_pool2d"), fmt)


def max_pool2d_backward(dy, argmax, x_shape, fmt):
    fmt = data_format(fmt)
    dy_arr = ndim4(array(dy, "dy"), "dy", fmt)
    idx = _asarray(argmax, "argmax")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"argmax must be an integer array (as max_pool2d_argmax returns), got dtype {idx.dtype}")
    if idx.shape != dy_arr.shape:
        raise ValueError(f"argmax has shape {idx.shape} but dy has shape {dy_arr.shape}; they must match")
    n, h, w, c = nhwc_shape(shape4(x_shape, "x_shape", fmt), fmt)
    dy_nhwc = to_nhwc(np.asarray(dy_arr, dtype=compute_dtype(dy_arr)), fmt)
    if dy_nhwc.shape[0] != n or dy_nhwc.shape[3] != c:
        raise ValueError(
            f"dy of shape {dy_arr.shape} does not fit x_shape {tuple(x_shape)} ({fmt}): "
            "batch and channel sizes must match"
        )
    if idx.size and (idx.min() < 0 or idx.max() >= h * w):
        raise ValueError(
            f"argmax holds indices in [{idx.min()}, {idx.max()}] but the (H, W)=({h}, {w}) "
            f"plane of x_shape {tuple(x_shape)} has indices 0..{h * w - 1}"
        )
    return PoolBackwardArgs(dy_nhwc, to_nhwc(idx.astype(np.int64, copy=False), fmt), h, w, fmt)


def _real(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def lrn(x, depth_radius, bias, alpha, beta, fmt, dy=None):
    fmt = data_format(fmt)
    arrays = [ndim4(array(x, "x"), "x", fmt)]
    if dy is not None:
        arrays.append(ndim4(array(dy, "dy"), "dy", fmt))
        if arrays[1].shape != arrays[0].shape:
            raise ValueError(f"dy has shape {arrays[1].shape} but x has shape {arrays[0].shape}; they must match")
    dtype = compute_dtype(*arrays)
    x_nhwc, *rest = (to_nhwc(np.asarray(a, dtype=dtype), fmt) for a in arrays)
    return LRNArgs(
        x_nhwc, rest[0] if rest else None, integer(depth_radius, "depth_radius", 0),
        _real(bias, "bias"), _real(alpha, "alpha"), _real(beta, "beta"), fmt,
    )


# ---------------------------------------------------------------- out=


def filter_shape(hwio_shape, fmt):
    """A filter shape in the caller's layout: HWIO for NHWC, OIHW for NCHW."""
    kh, kw, ci, co = hwio_shape
    return hwio_shape if fmt == "NHWC" else (co, ci, kh, kw)


def _overlap(a, b):
    """np.shares_memory, after the cheap bounds test (the exact one costs microseconds per pair)."""
    return np.may_share_memory(a, b) and np.shares_memory(a, b)


def out_array(out, name, shape, dtype, inputs):
    """The caller's result buffer, checked; None when there is none.

    It must be an ndarray of exactly ``shape`` and ``dtype``, C-contiguous,
    writable, and share no memory with any of ``inputs`` (a dict of the
    caller's arguments by name: a kernel reading an input it is overwriting
    would give garbage).
    """
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    shape = tuple(shape)
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape} but the result has shape {shape}")
    if out.dtype != dtype:
        raise TypeError(f"{name} has dtype {out.dtype} but the result has dtype {np.dtype(dtype)}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (np.ascontiguousarray makes one); got strides {out.strides}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    for input_name, value in inputs.items():
        if isinstance(value, np.ndarray) and _overlap(out, value):
            raise ValueError(f"{name} shares memory with {input_name}; pass a buffer of its own")
    return out


def out_arrays(out, specs, inputs):
    """A tuple of result buffers (``specs``: (name, shape, dtype) each), checked; None when there is none."""
    if out is None:
        return None
    names = ", ".join(name for name, _, _ in specs)
    if not isinstance(out, tuple) or len(out) != len(specs):
        raise TypeError(f"out must be a tuple of {len(specs)} arrays ({names}), got {type(out).__name__}")
    if any(o is None for o in out):
        raise TypeError(f"out must hold {len(specs)} arrays ({names}), not None")
    checked = tuple(out_array(o, f"out[{i}] ({name})", shape, dtype, inputs)
                    for i, (o, (name, shape, dtype)) in enumerate(zip(out, specs, strict=True)))
    for i in range(len(checked)):
        for j in range(i + 1, len(checked)):
            if _overlap(checked[i], checked[j]):
                raise ValueError(f"out[{i}] and out[{j}] share memory; each result needs a buffer of its own")
    return checked
