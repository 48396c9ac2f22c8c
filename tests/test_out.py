"""``out=`` on every public function, in both implementations.

The result lands in the caller's buffer, which is returned (the tuple
itself for several results), with exactly the values of the allocating
call; a buffer of the wrong type, shape or dtype, not C-contiguous,
read-only, or sharing memory with an input (or another buffer) is refused
by name before any kernel runs (the buffer is left untouched).
"""
import numpy as np
import pytest

FORMATS = ("NHWC", "NCHW")


def calls(rng, fmt, dtype=np.float64):
    """A function of the implementation: {name: (call taking out=, its array inputs)} for every public function."""
    x = rng.standard_normal((2, 7, 6, 4)).astype(dtype)
    w = rng.standard_normal((3, 3, 4, 6)).astype(dtype)
    wg = rng.standard_normal((3, 3, 2, 6)).astype(dtype)  # groups=2
    if fmt == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        w, wg = (np.ascontiguousarray(f.transpose(3, 2, 0, 1)) for f in (w, wg))
    b = rng.standard_normal(6).astype(dtype)
    bt = rng.standard_normal(4).astype(dtype)
    conv = dict(stride=2, padding=((1, 0), (2, 1)), data_format=fmt)
    return lambda nc: _calls(nc, x, w, wg, b, bt, conv, fmt)


def _calls(nc, x, w, wg, b, bt, conv, fmt):
    y = nc.conv2d(x, w, b, **conv)
    t = nc.conv2d_transpose(y, w, bt, output_padding=1, **conv)
    cols = nc.im2col(x, 3, **conv)
    pool = dict(stride=2, padding=1, ceil_mode=True, data_format=fmt)
    pooled, argmax = nc.max_pool2d_argmax(x, 3, **pool)
    avg = nc.avg_pool2d(x, 3, **pool)
    ad = nc.adaptive_avg_pool2d(x, (3, 2), data_format=fmt)
    dy = y[::-1].copy()
    return {
        "conv2d": (lambda out=None: nc.conv2d(x, w, b, out=out, **conv), (x, w, b)),
        "conv2d_grouped": (lambda out=None: nc.conv2d(x, wg, b, groups=2, out=out, **conv), (x, wg, b)),
        "conv2d_backward": (lambda out=None: nc.conv2d_backward(dy, x, w, out=out, **conv), (dy, x, w)),
        "conv2d_backward_grouped": (
            lambda out=None: nc.conv2d_backward(dy, x, wg, groups=2, out=out, **conv), (dy, x, wg)),
        "conv2d_backward_input": (
            lambda out=None: nc.conv2d_backward_input(dy, w, x.shape, out=out, **conv), (dy, w)),
        "conv2d_backward_filter": (
            lambda out=None: nc.conv2d_backward_filter(dy, x, w.shape, out=out, **conv), (dy, x)),
        "conv2d_transpose": (lambda out=None: nc.conv2d_transpose(y, w, bt, out=out, output_padding=1,
                                                                  **conv), (y, w, bt)),
        "conv2d_transpose_backward": (
            lambda out=None: nc.conv2d_transpose_backward(t, y, w, out=out, output_padding=1, **conv),
            (t, y, w)),
        "im2col": (lambda out=None: nc.im2col(x, 3, out=out, **conv), (x,)),
        "col2im": (lambda out=None: nc.col2im(cols, x.shape, 3, out=out, **conv), (cols,)),
        "max_pool2d": (lambda out=None: nc.max_pool2d(x, 3, out=out, **pool), (x,)),
        "max_pool2d_argmax": (lambda out=None: nc.max_pool2d_argmax(x, 3, out=out, **pool), (x,)),
        "max_pool2d_backward": (
            lambda out=None: nc.max_pool2d_backward(pooled, argmax, x.shape, out=out, data_format=fmt),
            (pooled, argmax)),
        "max_unpool2d": (
            lambda out=None: nc.max_unpool2d(pooled, argmax, x.shape, out=out, data_format=fmt),
            (pooled, argmax)),
        "avg_pool2d": (lambda out=None: nc.avg_pool2d(x, 3, out=out, **pool), (x,)),
        "avg_pool2d_backward": (
            lambda out=None: nc.avg_pool2d_backward(avg, x.shape, 3, out=out, **pool), (avg,)),
        "adaptive_avg_pool2d": (
            lambda out=None: nc.adaptive_avg_pool2d(x, (3, 2), out=out, data_format=fmt), (x,)),
        "adaptive_avg_pool2d_backward": (
            lambda out=None: nc.adaptive_avg_pool2d_backward(ad, x.shape, out=out, data_format=fmt),
            (ad,)),
        "lrn": (lambda out=None: nc.lrn(x, depth_radius=1, out=out, data_format=fmt), (x,)),
        "lrn_backward": (lambda out=None: nc.lrn_backward(x[::-1].copy(), x, depth_radius=1, out=out,
                                                          data_format=fmt), (x,)),
    }


NAMES = ["conv2d", "conv2d_grouped", "conv2d_backward", "conv2d_backward_grouped",
         "conv2d_backward_input", "conv2d_backward_filter", "conv2d_transpose",
         "conv2d_transpose_backward", "im2col", "col2im", "max_pool2d", "max_pool2d_argmax",
         "max_pool2d_backward", "max_unpool2d", "avg_pool2d", "avg_pool2d_backward",
         "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "lrn", "lrn_backward"]


def test_every_public_function_takes_out():
    import inspect

    import numbaconv as nc
    for name in nc.__all__:
        if name not in ("warmup", "reference"):
            assert "out" in inspect.signature(getattr(nc, name)).parameters, name
            assert name in NAMES, name


def as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def buffers_like(result, fill=np.nan):
    arrays = tuple(np.full_like(r, -1 if r.dtype.kind == "i" else fill) for r in as_tuple(result))
    return arrays if isinstance(result, tuple) else arrays[0]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", NAMES)
def test_out_receives_exactly_the_allocating_result_and_is_returned(impl, name, fmt, rng):
    call, _ = calls(rng, fmt)(impl)[name]
    expected = call()
    out = buffers_like(expected)
    result = call(out=out)
    assert result is out
    for got, want in zip(as_tuple(out), as_tuple(expected), strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", NAMES)
def test_repeated_calls_into_one_buffer_give_the_same_result(name, rng):
    import numbaconv as nc
    call, _ = calls(rng, "NHWC", np.float32)(nc)[name]
    out = buffers_like(call())
    first = tuple(a.copy() for a in as_tuple(call(out=out)))
    for got, want in zip(as_tuple(call(out=out)), first, strict=True):
        np.testing.assert_array_equal(got, want)


def bad_buffers(result):
    """(description, bad out, error type, phrase of the message) for one result array."""
    shape, dtype = result.shape, result.dtype
    wrong_dtype = np.float32 if dtype == np.float64 else np.float64
    strided = np.empty(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2]
    read_only = np.empty(shape, dtype)
    read_only.flags.writeable = False
    return [
        ("list", np.zeros(shape).tolist(), TypeError, "numpy.ndarray"),
        ("shape", np.empty(shape[:-1] + (shape[-1] + 1,), dtype), ValueError, "shape"),
        ("dtype", np.empty(shape, wrong_dtype), TypeError, "dtype"),
        ("non-contiguous", strided, ValueError, "C-contiguous"),
        ("Fortran", np.asfortranarray(np.empty(shape, dtype)) if result.ndim > 1 else strided,
         ValueError, "C-contiguous"),
        ("read-only", read_only, ValueError, "read-only"),
    ]


@pytest.mark.parametrize("name", NAMES)
def test_bad_out_is_refused_by_name_before_any_kernel_runs(impl, name, rng):
    call, inputs = calls(rng, "NHWC")(impl)[name]
    expected = as_tuple(call())
    several = len(expected) > 1
    for position, result in enumerate(expected):
        for what, bad, error, phrase in bad_buffers(result):
            out = list(buffers_like(tuple(expected), fill=7.0))
            out[position] = bad
            with pytest.raises(error, match=phrase) as info:
                call(out=tuple(out) if several else out[0])
            assert (f"out[{position}]" if several else "out") in str(info.value), what
            for other in out:  # nothing was written
                if isinstance(other, np.ndarray) and other is not bad and other.dtype.kind == "f":
                    assert (other == 7.0).all(), what


@pytest.mark.parametrize("name", NAMES)
def test_out_aliasing_an_input_is_refused(impl, name, rng):
    call, inputs = calls(rng, "NHWC")(impl)[name]
    expected = as_tuple(call())
    several = len(expected) > 1
    for position, result in enumerate(expected):
        for arg in inputs:
            if arg.dtype != result.dtype or arg.size < result.size:
                continue
            # A view of the input's memory with the result's shape.
            alias = arg.reshape(-1)[:result.size].reshape(result.shape)
            out = list(buffers_like(tuple(expected)))
            out[position] = alias
            before = arg.copy()
            with pytest.raises(ValueError, match="shares memory"):
                call(out=tuple(out) if several else out[0])
            np.testing.assert_array_equal(arg, before)


def test_one_buffer_for_two_results_is_refused(impl, rng):
    call, _ = calls(rng, "NHWC")(impl)["conv2d_backward"]
    dx, dw, db = call()
    shared = np.empty(dw.size + db.size)
    with pytest.raises(ValueError, match=r"out\[1\] and out\[2\] share memory"):
        call(out=(np.empty_like(dx), shared[:dw.size].reshape(dw.shape), shared[dw.size - 1:][:db.size]))


def test_out_must_be_a_tuple_of_the_right_length_for_several_results(impl, rng):
    call, _ = calls(rng, "NHWC")(impl)["max_pool2d_argmax"]
    y, argmax = call()
    with pytest.raises(TypeError, match="tuple of 2 arrays"):
        call(out=np.empty_like(y))
    with pytest.raises(TypeError, match="tuple of 2 arrays"):
        call(out=(np.empty_like(y),))
    with pytest.raises(TypeError, match="not None"):
        call(out=(np.empty_like(y), None))
