"""numbaconv.dask: lazy graphs over batch chunks equal the eager functions.

Each op runs on Dask arrays chunked along the batch (chunks of 1, uneven
chunks, one chunk), in both layouts, with the synchronous scheduler and on a
LocalCluster of two spawned worker processes, against the eager function on
the whole batch. Also: nothing runs before ``compute()``, one eager call per
chunk, deterministic tree-reduced dw/db, filters passed whole, rechunking
warnings, and the eager validation at graph construction.
"""
import inspect
import multiprocessing

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="numbaconv.dask needs the 'dask' extra")
dask = pytest.importorskip("dask")
pytest.importorskip("distributed", reason="numbaconv.dask needs the 'dask' extra")

import numbaconv  # noqa: E402
import numbaconv.dask as nd  # noqa: E402

N = 7
CHUNKINGS = {"ones": (1,) * N, "uneven": (3, 3, 1), "whole": (N,)}
LAYOUTS = ("NHWC", "NCHW")
TIMEOUT = 120  # seconds for any one result from the cluster


def filters(rng, kh, kw, c_in, c_out, fmt, dtype):
    w = rng.standard_normal((kh, kw, c_in, c_out)).astype(dtype)  # HWIO
    return w if fmt == "NHWC" else np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def in_layout(x_nhwc, fmt):
    return x_nhwc if fmt == "NHWC" else np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))


def image(rng, shape_nhwc, fmt, dtype):
    return in_layout(rng.standard_normal(shape_nhwc).astype(dtype), fmt)


def shuffled(rng, shape_nhwc, fmt, dtype):
    """Tie-free pooling input: a shuffled linspace."""
    values = rng.permutation(np.linspace(-1, 1, int(np.prod(shape_nhwc))))
    return in_layout(values.reshape(shape_nhwc).astype(dtype), fmt)


def like(rng, a):
    return rng.standard_normal(a.shape).astype(a.dtype)


# Each case: (make(rng, fmt, dtype) -> (data, extra), call(ops, data, extra, fmt)).
# ``data`` holds the batch inputs (chunked for numbaconv.dask), ``extra`` the
# rest (filters, shapes), passed unchanged. Keywords off their defaults.
CONV = {"stride": (2, 1), "padding": "SAME", "dilation": (1, 2)}
CONV_BACK = {"stride": 2, "padding": ((1, 0), (2, 1)), "dilation": 1}
TRANSPOSE = {"stride": 2, "padding": 1, "output_padding": (1, 0), "dilation": (1, 2)}
PATCH = {"stride": (2, 1), "padding": "SAME", "dilation": (2, 1)}
POOL = {"stride": (2, 1), "padding": (1, 0)}
LRN = {"depth_radius": 2, "bias": 2.0, "alpha": 0.5, "beta": 0.75}


def make_conv(rng, fmt, dtype):
    x = image(rng, (N, 9, 8, 3), fmt, dtype)
    w = filters(rng, 3, 2, 3, 4, fmt, dtype)
    return {"x": x}, {"w": w, "b": rng.standard_normal(4).astype(dtype)}


def make_conv_backward(rng, fmt, dtype, geometry=CONV_BACK):
    data, extra = make_conv(rng, fmt, dtype)
    y = numbaconv.conv2d(data["x"], extra["w"], **geometry, data_format=fmt)
    return {"dy": like(rng, y), "x": data["x"]}, extra


def make_transpose(rng, fmt, dtype):
    x = image(rng, (N, 5, 4, 4), fmt, dtype)
    return {"x": x}, {"w": filters(rng, 3, 2, 3, 4, fmt, dtype),
                      "b": rng.standard_normal(3).astype(dtype)}


def make_transpose_backward(rng, fmt, dtype):
    data, extra = make_transpose(rng, fmt, dtype)
    y = numbaconv.conv2d_transpose(data["x"], extra["w"], **TRANSPOSE, data_format=fmt)
    return {"dy": like(rng, y), "x": data["x"]}, extra


def make_image(rng, fmt, dtype):
    return {"x": shuffled(rng, (N, 9, 8, 3), fmt, dtype)}, {}


def make_col2im(rng, fmt, dtype):
    x = image(rng, (N, 9, 8, 3), fmt, dtype)
    cols = numbaconv.im2col(x, (3, 2), **PATCH, data_format=fmt)
    return {"cols": like(rng, cols)}, {"x_shape": x.shape}


def make_pool_backward(rng, fmt, dtype):
    x = shuffled(rng, (N, 9, 8, 3), fmt, dtype)
    y, argmax = numbaconv.max_pool2d_argmax(x, 3, stride=2, padding=1, data_format=fmt)
    return {"dy": like(rng, y), "argmax": argmax}, {"x_shape": x.shape}


def make_lrn_backward(rng, fmt, dtype):
    x = image(rng, (N, 4, 3, 7), fmt, dtype)
    return {"dy": like(rng, x), "x": x}, {}


CASES = {
    "conv2d": (make_conv, lambda ops, d, e, fmt: ops.conv2d(
        d["x"], e["w"], e["b"], **CONV, data_format=fmt)),
    "conv2d-no-bias": (make_conv, lambda ops, d, e, fmt: ops.conv2d(
        d["x"], e["w"], **CONV_BACK, data_format=fmt)),
    "conv2d_backward": (make_conv_backward, lambda ops, d, e, fmt: ops.conv2d_backward(
        d["dy"], d["x"], e["w"], **CONV_BACK, data_format=fmt)),
    "conv2d_transpose": (make_transpose, lambda ops, d, e, fmt: ops.conv2d_transpose(
        d["x"], e["w"], e["b"], **TRANSPOSE, data_format=fmt)),
    "conv2d_transpose_backward": (
        make_transpose_backward, lambda ops, d, e, fmt: ops.conv2d_transpose_backward(
            d["dy"], d["x"], e["w"], **TRANSPOSE, data_format=fmt)),
    "im2col": (make_image, lambda ops, d, e, fmt: ops.im2col(
        d["x"], (3, 2), **PATCH, data_format=fmt)),
    "col2im": (make_col2im, lambda ops, d, e, fmt: ops.col2im(
        d["cols"], e["x_shape"], (3, 2), **PATCH, data_format=fmt)),
    "max_pool2d": (make_image, lambda ops, d, e, fmt: ops.max_pool2d(
        d["x"], (3, 2), **POOL, data_format=fmt)),
    "max_pool2d_argmax": (make_image, lambda ops, d, e, fmt: ops.max_pool2d_argmax(
        d["x"], (3, 2), **POOL, data_format=fmt)),
    "max_pool2d_backward": (make_pool_backward, lambda ops, d, e, fmt: ops.max_pool2d_backward(
        d["dy"], d["argmax"], e["x_shape"], data_format=fmt)),
    "lrn": (make_lrn_backward, lambda ops, d, e, fmt: ops.lrn(d["x"], **LRN, data_format=fmt)),
    "lrn_backward": (make_lrn_backward, lambda ops, d, e, fmt: ops.lrn_backward(
        d["dy"], d["x"], **LRN, data_format=fmt)),
}


def as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def chunk(data, chunks):
    """The batch inputs as Dask arrays with these batch chunks (cols: rows per sample)."""
    out = {}
    for name, value in data.items():
        per_sample = value.shape[0] // N
        out[name] = da.from_array(value, chunks=(tuple(c * per_sample for c in chunks),)
                                  + value.shape[1:])
    return out


def assert_matches(lazy, eager, exact=False):
    assert len(lazy) == len(eager)
    for got, want in zip(lazy, eager):
        assert isinstance(got, np.ndarray) and got.shape == want.shape
        assert got.dtype == want.dtype
        if exact:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunking", list(CHUNKINGS))
@pytest.mark.parametrize("fmt", LAYOUTS)
@pytest.mark.parametrize("case", list(CASES))
def test_each_op_matches_the_eager_function(case, fmt, chunking, rng):
    make, call = CASES[case]
    data, extra = make(rng, fmt, np.float64)
    eager = as_tuple(call(numbaconv, data, extra, fmt))
    lazy = as_tuple(call(nd, chunk(data, CHUNKINGS[chunking]), extra, fmt))
    assert all(isinstance(a, da.Array) for a in lazy)
    for got, want in zip(lazy, eager):  # metadata right before computing
        assert got.shape == want.shape and got.dtype == want.dtype
        assert type(got._meta) is np.ndarray and got._meta.dtype == want.dtype
    per_sample = [a for a, e in zip(lazy, eager) if e.shape[0] % N == 0 and e.ndim > 1]
    for a in per_sample:  # chunked like the batch
        rows = a.shape[0] // N
        assert a.chunks[0] == tuple(c * rows for c in CHUNKINGS[chunking])
        assert all(len(c) == 1 for c in a.chunks[1:])
    computed = dask.compute(*lazy, scheduler="synchronous")
    assert_matches(computed, eager)


@pytest.mark.parametrize("case", ["conv2d", "conv2d_backward", "max_pool2d_argmax", "col2im"])
def test_float32_stays_float32(case, rng):
    make, call = CASES[case]
    data, extra = make(rng, "NHWC", np.float32)
    eager = as_tuple(call(numbaconv, data, extra, "NHWC"))
    computed = dask.compute(*as_tuple(call(nd, chunk(data, (3, 3, 1)), extra, "NHWC")),
                            scheduler="synchronous")
    for got, want in zip(computed, eager):
        assert got.dtype == want.dtype
        scale = np.abs(want).max() if want.size else 1
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("case", list(CASES))
def test_nothing_runs_before_compute_and_each_chunk_is_one_eager_call(case, rng, monkeypatch):
    make, call = CASES[case]
    data, extra = make(rng, "NHWC", np.float64)
    eager = as_tuple(call(numbaconv, data, extra, "NHWC"))
    op = case.split("-")[0]
    calls = []
    real = getattr(numbaconv, op)

    def counted(*args, **kwargs):
        calls.append(args[0].shape[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(numbaconv, op, counted)
    lazy = as_tuple(call(nd, chunk(data, (3, 3, 1)), extra, "NHWC"))
    assert calls == []  # building the graph ran no eager function (so compiled nothing)
    computed = dask.compute(*lazy, scheduler="synchronous")
    # One call per chunk, for every output together (cols: OH * OW rows per sample).
    per_sample = next(iter(data.values())).shape[0] // N
    assert sorted(calls) == sorted(c * per_sample for c in (3, 3, 1))
    assert_matches(computed, eager)


@pytest.mark.parametrize("fmt", LAYOUTS)
@pytest.mark.parametrize("case", ["conv2d_backward", "conv2d_transpose_backward"])
def test_batch_gradients_are_a_deterministic_tree_sum_of_the_chunks(case, fmt, rng):
    make, call = CASES[case]
    data, extra = make(rng, fmt, np.float32)
    chunks = (2, 1, 1, 2, 1)
    # Each chunk's eager dw, db; with one tree node for all five the sum is np.sum's.
    per_chunk = [call(numbaconv, {k: v[s:s + c] for k, v in data.items()}, extra, fmt)
                 for s, c in zip(np.cumsum((0,) + chunks[:-1]), chunks)]
    lazy = chunk(data, chunks)
    flat = dask.compute(*_backward(case, lazy, extra, fmt, split_every=8),
                        scheduler="synchronous")[1:]
    for i, got in enumerate(flat, start=1):
        np.testing.assert_array_equal(got, np.sum([p[i] for p in per_chunk], axis=0))
    # A deeper tree (two partials per node): same sums to float32 rounding,
    # and bit-identical when computed again from a new graph.
    deep = [dask.compute(*_backward(case, chunk(data, chunks), extra, fmt, split_every=2),
                         scheduler="synchronous") for _ in range(2)]
    eager = call(numbaconv, data, extra, fmt)
    for i in (1, 2):
        np.testing.assert_array_equal(deep[0][i], deep[1][i])
        scale = np.abs(eager[i]).max()
        np.testing.assert_allclose(deep[0][i], eager[i], rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_allclose(deep[0][i], flat[i - 1], rtol=1e-5, atol=1e-5 * scale)


def _backward(case, data, extra, fmt, split_every):
    geometry = CONV_BACK if case == "conv2d_backward" else TRANSPOSE
    return getattr(nd, case)(data["dy"], data["x"], extra["w"], **geometry, data_format=fmt,
                             split_every=split_every)
