"""Argument validation and normalization, shared by the kernels, the reference and compat.

Every public op goes through one function here before any computation. It
turns array-likes into arrays of the compute dtype, brings data to NHWC and
filters to HWIO, resolves stride/dilation/padding to ints, checks every shape
and returns the geometry the computation needs. Nothing past this module
validates, and no kernel sees an argument that could make it index out of
bounds.
"""
import functools
import numbers
import operator
import os
from typing import NamedTuple

import numpy as np

from . import _geometry

DATA_FORMATS = ("NHWC", "NCHW")


class Geometry(NamedTuple):
    """One sliding-window op on an (h, w) plane, all sizes resolved to ints.

    ``sh, sw, dh, dw`` are what the kernels use: the caller's values
    normalized by ``_geometry.kernel_step`` (1 where they cannot change the
    answer). ``stride`` and ``dilation`` keep the caller's values, for the
    reference.
    """

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
    stride: tuple  # the caller's (h, w)
    dilation: tuple


class ConvArgs(NamedTuple):
    """Normalized conv arguments: data in NHWC, filters in HWIO, one compute dtype.

    x is None for conv2d_backward_input, w for conv2d_backward_filter (only
    their shapes are given).
    """

    x: np.ndarray | None
    w: np.ndarray | None
    b: np.ndarray | None
    dy: np.ndarray | None
    g: Geometry
    data_format: str
    groups: int = 1  # grouped convolution: channels split into this many groups


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


class AvgPoolArgs(NamedTuple):
    x: np.ndarray  # x (forward) or dy (backward), NHWC
    g: Geometry
    count_include_pad: bool
    data_format: str


class AdaptivePoolArgs(NamedTuple):
    x: np.ndarray  # x (forward) or dy (backward), NHWC
    h: int  # input plane
    w: int
    oh: int  # output plane (output_size)
    ow: int
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


_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)


def compute_dtype(*arrays):
    """The contract's dtype rule: np.result_type(data arrays, float32).

    Arrays all of one native float32 or float64 dtype (the usual call) are
    answered without np.result_type: it is that dtype.
    """
    dtype = arrays[0].dtype
    if dtype is _FLOAT32 or dtype is _FLOAT64:
        for a in arrays[1:]:
            if a.dtype is not dtype:
                break
        else:
            return dtype
    return np.result_type(*arrays, np.float32)


INT64_MAX = int(np.iinfo(np.int64).max)


def integer(value, name, minimum, maximum=INT64_MAX):
    """A Python/NumPy integer in [minimum, maximum] (bool and float are refused).

    The default maximum is int64's: kernels index in int64, and NumPy
    cannot take a larger int as a size or an index either.
    """
    if type(value) is not int:  # (a plain int skips the ABC checks: 8 per conv call)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
        value = operator.index(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}={value} does not fit in int64 (must be <= 2**63 - 1)")
    return value


def _plain(value, minimum):
    """Whether ``value`` is a plain int that :func:`integer` returns as it is (no checks to run)."""
    return type(value) is int and minimum <= value <= INT64_MAX


def int_pair(value, name, minimum):
    """An int or a pair (h, w) of ints, each >= minimum, as a pair."""
    if _plain(value, minimum):  # (the usual arguments: no item names to format)
        return value, value
    if type(value) is tuple and len(value) == 2 and _plain(value[0], minimum) and _plain(value[1], minimum):
        return value
    if isinstance(value, (tuple, list, np.ndarray)):
        items = list(np.asarray(value, dtype=object).ravel()) if isinstance(value, np.ndarray) else list(value)
        if len(items) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        return tuple(integer(v, f"{name}[{i}]", minimum) for i, v in enumerate(items))
    v = integer(value, name, minimum)
    return v, v


def padding_spec(value, name="padding"):
    """'SAME', 'VALID', or explicit (top, bottom, left, right) ints >= 0."""
    if _plain(value, 0):
        return value, value, value, value
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


# Kept per geometry: the arguments are normalized ints, pairs and padding
# specs (hashable); a batch-1 call spends about 2.5 us here otherwise.
# Errors are raised again on every call (lru_cache keeps results only).
@functools.lru_cache(maxsize=1024)
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
    return kernel_geometry(h, w, oh, ow, kh, kw, stride, dilation, (pt, pb, pl, pr), what)


def kernel_geometry(h, w, oh, ow, kh, kw, stride, dilation, pads, what):
    """The Geometry of a forward window (h, w) -> (oh, ow), with the kernels' normalized steps.

    See ``numbaconv._geometry`` for the rule. ValueError (naming padding,
    stride and dilation) if the padded plane is too large to index in int64.
    """
    pt, pb, pl, pr = pads
    if max(h + pt + pb, w + pl + pr) >= _geometry.INDEX_LIMIT:
        raise ValueError(
            f"{what}: padding (top, bottom, left, right)={pads} on a plane of (H, W)=({h}, {w}) "
            f"with stride {stride} and dilation {dilation} makes a padded plane of "
            f"({h + pt + pb}, {w + pl + pr}); each side must stay below 2**62 to be indexed in int64"
        )
    sh, dh = _geometry.kernel_step(oh, kh, stride[0], dilation[0])
    sw, dw = _geometry.kernel_step(ow, kw, stride[1], dilation[1])
    return Geometry(h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pb, pl, pr, tuple(stride), tuple(dilation))


def _physical_memory():
    """Bytes of RAM on this machine (int64's maximum where the OS will not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return INT64_MAX


# No result may be larger than the machine's memory: np.empty would refuse it
# (or, with memory overcommit, hand out pages the kernel cannot fill).
MAX_RESULT_BYTES = min(_physical_memory(), INT64_MAX)


def check_result_size(shape, dtype, what, arguments):
    """ValueError, naming ``arguments``, if an array of ``shape`` could not be allocated.

    ``arguments`` is a string, or a function of no arguments that returns
    it (written only for the message: formatting it costs a microsecond).
    """
    count = 1
    for size in shape:
        count *= size
    nbytes = count * np.dtype(dtype).itemsize
    if nbytes > MAX_RESULT_BYTES:
        if callable(arguments):
            arguments = arguments()
        raise ValueError(
            f"{arguments} makes {what} of shape {tuple(shape)}: {count} elements, {nbytes} bytes "
            f"of {np.dtype(dtype).name}, more than this machine's memory ({MAX_RESULT_BYTES} bytes)"
        )


def _geometry_arguments(g):
    """The arguments that set a Geometry, as a caller would write them."""
    return (f"stride={g.stride}, padding={(g.pt, g.pb, g.pl, g.pr)} (top, bottom, left, right), "
            f"dilation={g.dilation}")


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
    return fmt, *_conv_cast(arrays, fmt, x_name)


def _conv_cast(arrays, fmt, x_name):
    """The arrays in one compute dtype (x_name's checked 4-D when given) and w as HWIO."""
    dtype = compute_dtype(*arrays.values())
    if x_name is not None:
        ndim4(arrays[x_name], x_name, fmt)
    w_arr = arrays["w"]
    if w_arr.ndim != 4:
        raise ValueError(f"w must be 4-D {_filter_name(fmt)}, got shape {w_arr.shape}")
    cast = {k: v if v.dtype is dtype else np.asarray(v, dtype=dtype) for k, v in arrays.items()}
    w_hwio = filters_to_hwio(cast["w"], fmt)
    kh, kw = w_hwio.shape[:2]
    if kh == 0 or kw == 0:
        raise ValueError(f"w has an empty kernel window ({kh}, {kw}): shape {w_arr.shape}")
    return cast, w_hwio


def _check_groups(groups, c_in, c_out, c_in_name, c_out_name, w_shape, fmt):
    """groups divides both channel counts, and w holds C_in // groups input channels per filter.

    ``c_in``/``c_out`` are the forward conv's channel counts as the call
    knows them (``None`` when only w knows it); the names say where each
    came from, for the messages.
    """
    hwio = (w_shape[2], w_shape[3], w_shape[1], w_shape[0]) if fmt == "NCHW" else tuple(w_shape)
    if type(groups) is int and groups == 1 and (c_in is None or hwio[2] == c_in) and (
            c_out is None or hwio[3] == c_out):
        return 1  # (the usual call: nothing to divide, the channels match; no messages to prepare)
    groups = integer(groups, "groups", 1)
    per_group, w_out = hwio[2], hwio[3]
    layout = "(KH, KW, C_in // groups, C_out) HWIO" if fmt == "NHWC" else "(C_out, C_in // groups, KH, KW) OIHW"
    for count, name in ((c_in, c_in_name), (c_out, c_out_name)):
        if count is not None and count % groups:
            raise ValueError(f"groups={groups} must divide {name}={count}")
    if w_out % groups:
        raise ValueError(f"groups={groups} must divide C_out={w_out} of w of shape {tuple(w_shape)} ({layout})")
    if c_in is not None and per_group * groups != c_in:
        raise ValueError(
            f"w of shape {tuple(w_shape)} ({layout}) holds {per_group} input channels per filter, "
            f"but {c_in_name}={c_in} with groups={groups} needs C_in // groups={c_in // groups}"
        )
    if c_out is not None and w_out != c_out:
        raise ValueError(
            f"{c_out_name}={c_out} but w of shape {tuple(w_shape)} ({layout}) has C_out={w_out}"
        )
    return groups


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


def _conv_geometry(x_shape_nhwc, w_hwio_shape, w_shape, stride, padding, dilation, groups, fmt, x_name):
    """(groups, Geometry) of a forward conv of an x of NHWC shape ``x_shape_nhwc`` by w.

    ``w_shape`` is w's shape as the caller gave it (for the messages).
    """
    kh, kw = w_hwio_shape[:2]
    if kh == 0 or kw == 0:
        raise ValueError(f"w has an empty kernel window ({kh}, {kw}): shape {tuple(w_shape)}")
    groups = _check_groups(groups, x_shape_nhwc[3], None, f"the channels of {x_name}", None,
                           w_shape, fmt)
    _, h, wd, _ = x_shape_nhwc
    g = window_geometry(h, wd, kh, kw, int_pair(stride, "stride", 1), int_pair(dilation, "dilation", 1),
                        padding_spec(padding), "conv2d")
    return groups, g


def conv2d(x, w, b, stride, padding, dilation, fmt, dy=None, groups=1):
    """conv2d and conv2d_backward: x (N, H, W, C_in) -> y (N, OH, OW, C_out)."""
    fmt, a, w_hwio = _conv_common(x, w, b, dy, fmt, "x")
    x_nhwc = to_nhwc(a["x"], fmt)
    groups, g = _conv_geometry(x_nhwc.shape, w_hwio.shape, a["w"].shape, stride, padding, dilation,
                               groups, fmt, "x")
    n, co = x_nhwc.shape[0], w_hwio.shape[3]
    check_result_size((n, g.oh, g.ow, co), w_hwio.dtype, "an output (N, OH, OW, C_out)",
                      lambda: _geometry_arguments(g))
    dy_nhwc = None
    if dy is not None:
        dy_nhwc = _conv_dy(a["dy"], (n, g.oh, g.ow, co), fmt)
    return ConvArgs(x_nhwc, w_hwio, _check_bias(a.get("b"), co, "C_out"), dy_nhwc, g, fmt, groups)


def _conv_dy(dy, expected_nhwc, fmt):
    dy_nhwc = to_nhwc(ndim4(dy, "dy", fmt), fmt)
    _check_dy(dy_nhwc, expected_nhwc, fmt, "the conv2d output")
    return dy_nhwc


def conv2d_backward_input(dy, w, x_shape, stride, padding, dilation, groups, fmt):
    """conv2d_backward_input: ConvArgs with x None; the input plane is (g.h, g.w)."""
    fmt = data_format(fmt)
    a, w_hwio = _conv_cast({"w": array(w, "w"), "dy": array(dy, "dy")}, fmt, None)
    x_nhwc_shape = nhwc_shape(shape4(x_shape, "x_shape", fmt), fmt)
    groups, g = _conv_geometry(x_nhwc_shape, w_hwio.shape, a["w"].shape, stride, padding, dilation,
                               groups, fmt, "x_shape")
    dy_nhwc = _conv_dy(a["dy"], (x_nhwc_shape[0], g.oh, g.ow, w_hwio.shape[3]), fmt)
    return ConvArgs(None, w_hwio, None, dy_nhwc, g, fmt, groups)


def conv2d_backward_filter(dy, x, w_shape, stride, padding, dilation, groups, fmt):
    """conv2d_backward_filter: ConvArgs with w None; w_shape gives the window."""
    fmt = data_format(fmt)
    arrays = {"x": ndim4(array(x, "x"), "x", fmt), "dy": array(dy, "dy")}
    dtype = compute_dtype(*arrays.values())
    x_nhwc = to_nhwc(np.asarray(arrays["x"], dtype=dtype), fmt)
    w_shape = shape4(w_shape, "w_shape", _filter_name(fmt))
    hwio_shape = w_shape if fmt == "NHWC" else (w_shape[2], w_shape[3], w_shape[1], w_shape[0])
    groups, g = _conv_geometry(x_nhwc.shape, hwio_shape, w_shape, stride, padding, dilation, groups,
                               fmt, "x")
    dy_nhwc = _conv_dy(np.asarray(arrays["dy"], dtype=dtype), (x_nhwc.shape[0], g.oh, g.ow, hwio_shape[3]),
                       fmt)
    return ConvArgs(x_nhwc, None, None, dy_nhwc, g, fmt, groups)


def conv2d_transpose(x, w, b, stride, padding, output_padding, dilation, fmt, dy=None, groups=1):
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
    kh, kw, ci_group, co = w_hwio.shape
    groups = _check_groups(groups, None, x_nhwc.shape[3], None, "the channels of x", a["w"].shape, fmt)
    ci = ci_group * groups
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
    check_result_size(
        (n, oh, ow, ci), w_hwio.dtype, "an output (N, OH, OW, C_in)",
        f"stride={(sh, sw)}, padding={pads} (top, bottom, left, right), "
        f"output_padding={(oph, opw)}, dilation={(dh, dw)} on an input plane of ({ih}, {iw})",
    )
    g = kernel_geometry(oh, ow, ih, iw, kh, kw, (sh, sw), (dh, dw), pads, "conv2d_transpose")
    dy_nhwc = None
    if dy is not None:
        dy_nhwc = to_nhwc(ndim4(a["dy"], "dy", fmt), fmt)
        _check_dy(dy_nhwc, (n, oh, ow, ci), fmt, "the conv2d_transpose output")
    return ConvArgs(x_nhwc, w_hwio, _check_bias(a.get("b"), ci, "C_in"), dy_nhwc, g, fmt, groups)


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
    check_result_size((n * g.oh * g.ow, kh * kw * c), x_nhwc.dtype,
                      "cols (N * OH * OW, KH * KW * C)",
                      lambda: f"kernel_size={(kh, kw)}, {_geometry_arguments(g)}")
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
    check_result_size((n, h, w, c), compute_dtype(cols_arr), "an output", f"x_shape={tuple(x_shape)}")
    expected = (n * g.oh * g.ow, kh * kw * c)
    if cols_arr.shape != expected:
        raise ValueError(
            f"cols must have shape (N*H_out*W_out, KH*KW*C)={expected} for x_shape "
            f"{tuple(x_shape)} ({fmt}) and kernel ({kh}, {kw}); got {cols_arr.shape}"
        )
    return PatchArgs(np.asarray(cols_arr, dtype=compute_dtype(cols_arr)), n, c, g, fmt)


def flag(value, name):
    """A Python or NumPy bool (ints are refused: ``ceil_mode=2`` is a mistake, not True)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} of type {type(value).__name__}")
    return bool(value)


def _check_windows_reach_input(size, out, k, stride, dilation, pad_before, axis, what):
    """ValueError if some window's taps all fall outside [0, size) (possible with dilation).

    Window o's taps are ``start + i * dilation`` (``start = o * stride - pad_before``,
    ``0 <= i < k``); those inside the input are ``first <= i <= last``. With
    ``dilation <= size`` a window can miss the input only by lying wholly
    before or after it, and such windows sit at the two ends: the first and
    the last window decide. A larger dilation can step over the input, but
    then few windows fit (``out <= size`` with SAME padding, fewer still with
    explicit padding below the window size), so each is checked. Either way
    the cost is bounded by the data, never by the padding or the window.
    """
    if dilation <= size and size + out * stride + pad_before + k * dilation < _geometry.INDEX_LIMIT:
        # The two end windows in Python ints: the arithmetic below without
        # its int64 arrays (6 us of NumPy per axis on small calls), on
        # values far from int64's limits, where both give the same answer.
        for o in (0, out - 1):
            start = o * stride - pad_before
            if max(0, -(start // dilation)) > min(k - 1, (size - 1 - start) // dilation):
                _no_input_in_window(o, start, size, k, dilation, pad_before, axis, what)
        return
    windows = np.array([0, out - 1]) if dilation <= size else np.arange(out)
    starts = windows.astype(np.int64) * stride - pad_before
    first = np.maximum(0, -(starts // dilation))  # ceil(-start / dilation)
    last = np.minimum(k - 1, (size - 1 - starts) // dilation)
    empty = np.flatnonzero(first > last)
    if empty.size:
        _no_input_in_window(int(windows[empty[0]]), int(starts[empty[0]]), size, k, dilation, pad_before,
                            axis, what)


def _no_input_in_window(o, start, size, k, dilation, pad_before, axis, what):
    raise ValueError(
        f"{what}: the window of output {axis} {o} reads rows/columns {start}, "
        f"{start + dilation}, ..., {start + (k - 1) * dilation}, none inside the input's "
        f"{size}; choose a smaller dilation ({dilation}) or padding ({pad_before}) along {axis}"
    )


def pool_geometry(h, w, pool_size, stride, padding, dilation, ceil_mode, what, plane_name="x"):
    """Geometry of a pooling window over an (h, w) plane (max and average pooling).

    ``stride=None`` is ``pool_size``. Explicit padding sides must be smaller
    than the window (``k``, not its dilated extent); the plane must not be
    empty; with ``ceil_mode`` the output rounds up (``_geometry.pool_out_size``);
    every window must hold at least one input cell.
    """
    kh, kw = int_pair(pool_size, "pool_size", 1)
    stride = (kh, kw) if stride is None else int_pair(stride, "stride", 1)
    dilation = int_pair(dilation, "dilation", 1)
    ceil_mode = flag(ceil_mode, "ceil_mode")
    pad = padding_spec(padding)
    if isinstance(pad, tuple):
        pt, pb, pl, pr = pad
        if max(pt, pb) >= kh or max(pl, pr) >= kw:
            raise ValueError(
                f"pool padding must be smaller than the window on each side: "
                f"padding (top, bottom, left, right)={pad}, pool_size=({kh}, {kw})"
            )
    if h == 0 or w == 0:
        raise ValueError(
            f"{plane_name} has an empty (H, W) plane ({h}, {w}): every pooling window would be all padding"
        )
    (sh, sw), (dh, dw) = stride, dilation
    pt, pb, pl, pr = resolve_padding(pad, h, w, kh, kw, sh, sw, dh, dw)
    oh = _geometry.pool_out_size(h, kh, sh, dh, pt, pb, ceil_mode)
    ow = _geometry.pool_out_size(w, kw, sw, dw, pl, pr, ceil_mode)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"{what} gives an empty output ({oh}, {ow}): input (H, W)=({h}, {w}), "
            f"window ({kh}, {kw}), stride ({sh}, {sw}), dilation ({dh}, {dw}), "
            f"padding (top, bottom, left, right)=({pt}, {pb}, {pl}, {pr}), ceil_mode={ceil_mode}"
        )
    _check_windows_reach_input(h, oh, kh, sh, dh, pt, "row", what)
    _check_windows_reach_input(w, ow, kw, sw, dw, pl, "column", what)
    return kernel_geometry(h, w, oh, ow, kh, kw, stride, dilation, (pt, pb, pl, pr), what)


def _pool_input(x, fmt):
    fmt = data_format(fmt)
    x_arr = ndim4(array(x, "x"), "x", fmt)
    return fmt, to_nhwc(np.asarray(x_arr, dtype=compute_dtype(x_arr)), fmt)


def max_pool2d(x, pool_size, stride, padding, dilation, ceil_mode, fmt):
    fmt, x_nhwc = _pool_input(x, fmt)
    _, h, w, _ = x_nhwc.shape
    g = pool_geometry(h, w, pool_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    # int64: the argmax is at least as wide as any compute dtype.
    check_result_size((x_nhwc.shape[0], g.oh, g.ow, x_nhwc.shape[3]), np.int64,
                      "an output (N, OH, OW, C)", lambda: f"pool_size={(g.kh, g.kw)}, {_geometry_arguments(g)}")
    return PoolArgs(x_nhwc, g, fmt)


def max_pool2d_backward(dy, argmax, x_shape, fmt, name="dy"):
    """max_pool2d_backward (``dy``) and max_unpool2d (``name="y"``): values routed by argmax."""
    fmt = data_format(fmt)
    dy_arr = ndim4(array(dy, name), name, fmt)
    idx = _asarray(argmax, "argmax")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"argmax must be an integer array (as max_pool2d_argmax returns), got dtype {idx.dtype}")
    if idx.shape != dy_arr.shape:
        raise ValueError(f"argmax has shape {idx.shape} but {name} has shape {dy_arr.shape}; they must match")
    n, h, w, c = nhwc_shape(shape4(x_shape, "x_shape", fmt), fmt)
    check_result_size((n, h, w, c), compute_dtype(dy_arr), "an output", f"x_shape={tuple(x_shape)}")
    dy_nhwc = to_nhwc(np.asarray(dy_arr, dtype=compute_dtype(dy_arr)), fmt)
    if dy_nhwc.shape[0] != n or dy_nhwc.shape[3] != c:
        raise ValueError(
            f"{name} of shape {dy_arr.shape} does not fit x_shape {tuple(x_shape)} ({fmt}): "
            "batch and channel sizes must match"
        )
    if idx.size and (idx.min() < 0 or idx.max() >= h * w):
        raise ValueError(
            f"argmax holds indices in [{idx.min()}, {idx.max()}] but the (H, W)=({h}, {w}) "
            f"plane of x_shape {tuple(x_shape)} has indices 0..{h * w - 1}"
        )
    return PoolBackwardArgs(dy_nhwc, to_nhwc(idx.astype(np.int64, copy=False), fmt), h, w, fmt)


def max_unpool2d(y, argmax, x_shape, fmt):
    return max_pool2d_backward(y, argmax, x_shape, fmt, name="y")


def avg_pool2d(x, pool_size, stride, padding, ceil_mode, count_include_pad, fmt):
    fmt, x_nhwc = _pool_input(x, fmt)
    _, h, w, _ = x_nhwc.shape
    g = pool_geometry(h, w, pool_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    return AvgPoolArgs(x_nhwc, g, flag(count_include_pad, "count_include_pad"), fmt)


def avg_pool2d_backward(dy, x_shape, pool_size, stride, padding, ceil_mode, count_include_pad, fmt):
    """The geometry is that of the forward call on ``x_shape``; ``dy`` must have its output's shape."""
    fmt = data_format(fmt)
    dy_arr = ndim4(array(dy, "dy"), "dy", fmt)
    n, h, w, c = nhwc_shape(shape4(x_shape, "x_shape", fmt), fmt)
    g = pool_geometry(h, w, pool_size, stride, padding, 1, ceil_mode, "avg_pool2d", "x_shape")
    dy_nhwc = to_nhwc(np.asarray(dy_arr, dtype=compute_dtype(dy_arr)), fmt)
    _check_dy(dy_nhwc, (n, g.oh, g.ow, c), fmt, f"the avg_pool2d output for x_shape {tuple(x_shape)}")
    return AvgPoolArgs(dy_nhwc, g, flag(count_include_pad, "count_include_pad"), fmt)


def adaptive_avg_pool2d(x, output_size, fmt):
    fmt, x_nhwc = _pool_input(x, fmt)
    oh, ow = int_pair(output_size, "output_size", 1)
    _, h, w, _ = x_nhwc.shape
    if h == 0 or w == 0:
        raise ValueError(f"x has an empty (H, W) plane ({h}, {w}): every adaptive pooling bin would be empty")
    return AdaptivePoolArgs(x_nhwc, h, w, oh, ow, fmt)


def adaptive_avg_pool2d_backward(dy, x_shape, fmt):
    """The output size is ``dy``'s plane; ``x_shape`` gives the input plane."""
    fmt = data_format(fmt)
    dy_arr = ndim4(array(dy, "dy"), "dy", fmt)
    n, h, w, c = nhwc_shape(shape4(x_shape, "x_shape", fmt), fmt)
    if h == 0 or w == 0:
        raise ValueError(f"x_shape {tuple(x_shape)} has an empty (H, W) plane ({h}, {w})")
    dy_nhwc = to_nhwc(np.asarray(dy_arr, dtype=compute_dtype(dy_arr)), fmt)
    _, oh, ow, _ = dy_nhwc.shape
    if dy_nhwc.shape[0] != n or dy_nhwc.shape[3] != c or oh == 0 or ow == 0:
        raise ValueError(
            f"dy of shape {dy_arr.shape} does not fit x_shape {tuple(x_shape)} ({fmt}): batch and "
            "channel sizes must match and dy's plane (the output_size) must not be empty"
        )
    return AdaptivePoolArgs(dy_nhwc, h, w, oh, ow, fmt)


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
        x_nhwc, rest[0] if rest else None, # Any radius: the cores clip it to C - 1.
        integer(depth_radius, "depth_radius", 0, maximum=None),
        _real(bias, "bias"), _real(alpha, "alpha"), _real(beta, "beta"), fmt,
    )


# ---------------------------------------------------------------- out=


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
    shape = tuple(int(s) for s in shape)
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape} but the result has shape {shape}")
    if out.dtype != dtype:
        raise TypeError(f"{name} has dtype {out.dtype} but the result has dtype {np.dtype(dtype)}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (np.ascontiguousarray makes one); "
                         f"got strides {out.strides}")
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
        raise TypeError(f"out must be a tuple of {len(specs)} arrays ({names}), got {type(out).__name__}"
                        + (f" of length {len(out)}" if isinstance(out, tuple) else ""))
    checked = tuple(out_array(o, f"out[{i}] ({name})", shape, dtype, inputs) if o is not None else None
                    for i, (o, (name, shape, dtype)) in enumerate(zip(out, specs, strict=True)))
    if any(o is None for o in checked):
        raise TypeError(f"out must hold {len(specs)} arrays ({names}), not None")
    for i in range(len(checked)):
        for j in range(i + 1, len(checked)):
            if _overlap(checked[i], checked[j]):
                raise ValueError(f"out[{i}] and out[{j}] share memory; each result needs a buffer of its own")
    return checked
