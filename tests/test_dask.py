"""numbaconv.dask: lazy graphs over batch chunks equal the eager functions.

Each op runs on Dask arrays chunked along the batch (chunks of 1, uneven
chunks, one chunk, an empty chunk), in both layouts, with the synchronous
scheduler and on a LocalCluster of two spawned worker processes, against the
eager function on the whole batch. Also: nothing runs before ``compute()``, one eager call per
chunk, deterministic tree-reduced dw/db, filters passed whole, rechunking
warnings, and the eager validation at graph construction.
"""
import inspect
import logging
import multiprocessing

import numpy as np
import pytest

import dask
import dask.array as da


import numbaconv
import numbaconv.dask as nd

N = 7
# The eager ops (numbaconv.reference, which numbaconv.dask runs on empty batches for shapes, and
# warmup are not ops).
EAGER_OPS = [name for name in numbaconv.__all__ if name not in ("warmup", "reference")]
CHUNKINGS = {"ones": (1,) * N, "uneven": (3, 3, 1), "whole": (N,), "with-empty": (3, 0, 4)}
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
ARGMAX_POOL = {"stride": 2, "padding": 1}
DILATED_POOL = {"stride": 2, "padding": 1, "dilation": (2, 1), "ceil_mode": True}
AVG_POOL = {"stride": (2, 1), "padding": (1, 0), "ceil_mode": True, "count_include_pad": True}
GROUPS = 2
LRN = {"depth_radius": 2, "bias": 2.0, "alpha": 0.5, "beta": 0.75}


def make_conv(rng, fmt, dtype):
    x = image(rng, (N, 9, 8, 3), fmt, dtype)
    w = filters(rng, 3, 2, 3, 4, fmt, dtype)
    return {"x": x}, {"w": w, "b": rng.standard_normal(4).astype(dtype)}


def make_conv_backward(rng, fmt, dtype, geometry=CONV_BACK):
    data, extra = make_conv(rng, fmt, dtype)
    y = numbaconv.conv2d(data["x"], extra["w"], **geometry, data_format=fmt)
    return {"dy": like(rng, y), "x": data["x"]}, extra


def make_grouped(rng, fmt, dtype):
    """conv2d with GROUPS groups: 4 input channels, 6 output channels."""
    x = image(rng, (N, 9, 8, 4), fmt, dtype)
    w = filters(rng, 3, 2, 4 // GROUPS, 6, fmt, dtype)
    return {"x": x}, {"w": w, "b": rng.standard_normal(6).astype(dtype)}


def make_grouped_backward(rng, fmt, dtype):
    data, extra = make_grouped(rng, fmt, dtype)
    y = numbaconv.conv2d(data["x"], extra["w"], **CONV_BACK, groups=GROUPS, data_format=fmt)
    return {"dy": like(rng, y), "x": data["x"]}, {**extra, "x_shape": data["x"].shape}


def make_grouped_transpose(rng, fmt, dtype):
    """The transpose of make_grouped's conv: 6 input channels, 4 output channels."""
    _, extra = make_grouped(rng, fmt, dtype)
    x = image(rng, (N, 5, 4, 6), fmt, dtype)
    return {"x": x}, {"w": extra["w"], "b": rng.standard_normal(4).astype(dtype)}


def make_grouped_transpose_backward(rng, fmt, dtype):
    data, extra = make_grouped_transpose(rng, fmt, dtype)
    y = numbaconv.conv2d_transpose(data["x"], extra["w"], **TRANSPOSE, groups=GROUPS,
                                   data_format=fmt)
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


def make_pool_backward(rng, fmt, dtype, geometry=ARGMAX_POOL):
    x = shuffled(rng, (N, 9, 8, 3), fmt, dtype)
    y, argmax = numbaconv.max_pool2d_argmax(x, 3, **geometry, data_format=fmt)
    return {"dy": like(rng, y), "argmax": argmax}, {"x_shape": x.shape}


def make_unpool(rng, fmt, dtype):
    data, extra = make_pool_backward(rng, fmt, dtype, geometry=DILATED_POOL)
    return {"y": data["dy"], "argmax": data["argmax"]}, extra


def make_avg_pool_backward(rng, fmt, dtype):
    x = image(rng, (N, 9, 8, 3), fmt, dtype)
    y = numbaconv.avg_pool2d(x, (3, 2), **AVG_POOL, data_format=fmt)
    return {"dy": like(rng, y)}, {"x_shape": x.shape}


def make_adaptive_backward(rng, fmt, dtype):
    x = image(rng, (N, 9, 8, 3), fmt, dtype)
    y = numbaconv.adaptive_avg_pool2d(x, (4, 3), data_format=fmt)
    return {"dy": like(rng, y)}, {"x_shape": x.shape}


def make_lrn_backward(rng, fmt, dtype):
    x = image(rng, (N, 4, 3, 7), fmt, dtype)
    return {"dy": like(rng, x), "x": x}, {}


CASES = {
    "conv2d": (make_conv, lambda ops, d, e, fmt: ops.conv2d(
        d["x"], e["w"], e["b"], **CONV, data_format=fmt)),
    "conv2d-no-bias": (make_conv, lambda ops, d, e, fmt: ops.conv2d(
        d["x"], e["w"], **CONV_BACK, data_format=fmt)),
    "conv2d-groups": (make_grouped, lambda ops, d, e, fmt: ops.conv2d(
        d["x"], e["w"], e["b"], **CONV, groups=GROUPS, data_format=fmt)),
    # The batch reductions pass ``split_every`` on (for the tree tests).
    "conv2d_backward": (make_conv_backward, lambda ops, d, e, fmt, **kw: ops.conv2d_backward(
        d["dy"], d["x"], e["w"], **CONV_BACK, data_format=fmt, **kw)),
    "conv2d_backward-groups": (
        make_grouped_backward, lambda ops, d, e, fmt, **kw: ops.conv2d_backward(
            d["dy"], d["x"], e["w"], **CONV_BACK, groups=GROUPS, data_format=fmt, **kw)),
    "conv2d_backward_input": (
        make_grouped_backward, lambda ops, d, e, fmt: ops.conv2d_backward_input(
            d["dy"], e["w"], e["x_shape"], **CONV_BACK, groups=GROUPS, data_format=fmt)),
    "conv2d_backward_filter": (
        make_grouped_backward, lambda ops, d, e, fmt, **kw: ops.conv2d_backward_filter(
            d["dy"], d["x"], e["w"].shape, **CONV_BACK, groups=GROUPS, data_format=fmt,
            **kw)),
    "conv2d_transpose": (make_transpose, lambda ops, d, e, fmt: ops.conv2d_transpose(
        d["x"], e["w"], e["b"], **TRANSPOSE, data_format=fmt)),
    "conv2d_transpose-groups": (
        make_grouped_transpose, lambda ops, d, e, fmt: ops.conv2d_transpose(
            d["x"], e["w"], e["b"], **TRANSPOSE, groups=GROUPS, data_format=fmt)),
    "conv2d_transpose_backward": (
        make_transpose_backward, lambda ops, d, e, fmt, **kw: ops.conv2d_transpose_backward(
            d["dy"], d["x"], e["w"], **TRANSPOSE, data_format=fmt, **kw)),
    "conv2d_transpose_backward-groups": (
        make_grouped_transpose_backward,
        lambda ops, d, e, fmt, **kw: ops.conv2d_transpose_backward(
            d["dy"], d["x"], e["w"], **TRANSPOSE, groups=GROUPS, data_format=fmt, **kw)),
    "im2col": (make_image, lambda ops, d, e, fmt: ops.im2col(
        d["x"], (3, 2), **PATCH, data_format=fmt)),
    "col2im": (make_col2im, lambda ops, d, e, fmt: ops.col2im(
        d["cols"], e["x_shape"], (3, 2), **PATCH, data_format=fmt)),
    "max_pool2d": (make_image, lambda ops, d, e, fmt: ops.max_pool2d(
        d["x"], (3, 2), **POOL, data_format=fmt)),
    "max_pool2d_argmax": (make_image, lambda ops, d, e, fmt: ops.max_pool2d_argmax(
        d["x"], (3, 2), **POOL, data_format=fmt)),
    "max_pool2d-dilated-ceil": (make_image, lambda ops, d, e, fmt: ops.max_pool2d(
        d["x"], 3, **DILATED_POOL, data_format=fmt)),
    "max_pool2d_argmax-dilated-ceil": (make_image, lambda ops, d, e, fmt: ops.max_pool2d_argmax(
        d["x"], 3, **DILATED_POOL, data_format=fmt)),
    "max_pool2d_backward": (make_pool_backward, lambda ops, d, e, fmt: ops.max_pool2d_backward(
        d["dy"], d["argmax"], e["x_shape"], data_format=fmt)),
    "max_unpool2d": (make_unpool, lambda ops, d, e, fmt: ops.max_unpool2d(
        d["y"], d["argmax"], e["x_shape"], data_format=fmt)),
    "avg_pool2d": (make_image, lambda ops, d, e, fmt: ops.avg_pool2d(
        d["x"], (3, 2), **AVG_POOL, data_format=fmt)),
    "avg_pool2d-same": (make_image, lambda ops, d, e, fmt: ops.avg_pool2d(
        d["x"], 3, stride=2, padding="SAME", data_format=fmt)),
    "avg_pool2d_backward": (make_avg_pool_backward, lambda ops, d, e, fmt: ops.avg_pool2d_backward(
        d["dy"], e["x_shape"], (3, 2), **AVG_POOL, data_format=fmt)),
    "adaptive_avg_pool2d": (make_image, lambda ops, d, e, fmt: ops.adaptive_avg_pool2d(
        d["x"], (4, 3), data_format=fmt)),
    "adaptive_avg_pool2d_backward": (
        make_adaptive_backward, lambda ops, d, e, fmt: ops.adaptive_avg_pool2d_backward(
            d["dy"], e["x_shape"], data_format=fmt)),
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


# The batch reductions and the index of their first summed output (after dx).
REDUCTIONS = {"conv2d_backward": 1, "conv2d_backward-groups": 1,
              "conv2d_transpose_backward": 1, "conv2d_transpose_backward-groups": 1,
              "conv2d_backward_filter": 0}


@pytest.mark.parametrize("fmt", LAYOUTS)
@pytest.mark.parametrize("case", list(REDUCTIONS))
def test_batch_gradients_are_a_deterministic_tree_sum_of_the_chunks(case, fmt, rng):
    make, call = CASES[case]
    first = REDUCTIONS[case]
    data, extra = make(rng, fmt, np.float32)
    chunks = (2, 1, 1, 2, 1)

    def summed(ops, data, **kw):
        return as_tuple(call(ops, data, extra, fmt, **kw))[first:]

    # Each chunk's eager sums; with one tree node for all five the sum is np.sum's.
    per_chunk = [summed(numbaconv, {k: v[s:s + c] for k, v in data.items()})
                 for s, c in zip(np.cumsum((0,) + chunks[:-1]), chunks)]
    flat = dask.compute(*summed(nd, chunk(data, chunks), split_every=8),
                        scheduler="synchronous")
    assert len(flat) == (2 if first else 1)  # dw and db after dx, or dw alone
    for i, got in enumerate(flat):
        np.testing.assert_array_equal(got, np.sum([p[i] for p in per_chunk], axis=0))
    # A deeper tree (two partials per node): same sums to float32 rounding,
    # and bit-identical when computed again from a new graph.
    deep = [dask.compute(*summed(nd, chunk(data, chunks), split_every=2),
                         scheduler="synchronous") for _ in range(2)]
    eager = summed(numbaconv, data)
    for i, want in enumerate(eager):
        np.testing.assert_array_equal(deep[0][i], deep[1][i])
        scale = np.abs(want).max()
        np.testing.assert_allclose(deep[0][i], want, rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_allclose(deep[0][i], flat[i], rtol=1e-5, atol=1e-5 * scale)


def test_the_separate_gradients_match_conv2d_backward(rng):
    """conv2d_backward_input and _filter give conv2d_backward's dx and dw, chunk by chunk."""
    data, extra = make_grouped_backward(rng, "NCHW", np.float64)
    lazy = chunk(data, (3, 3, 1))
    geometry = {**CONV_BACK, "groups": GROUPS, "data_format": "NCHW"}
    dx, dw, _ = nd.conv2d_backward(lazy["dy"], lazy["x"], extra["w"], **geometry)
    dx_alone = nd.conv2d_backward_input(lazy["dy"], extra["w"], data["x"].shape, **geometry)
    dw_alone = nd.conv2d_backward_filter(lazy["dy"], lazy["x"], extra["w"].shape, **geometry)
    assert dx_alone.chunks == dx.chunks and dw_alone.chunks == dw.chunks
    computed = dask.compute(dx, dw, dx_alone, dw_alone, scheduler="synchronous")
    np.testing.assert_allclose(computed[2], computed[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(computed[3], computed[1], rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------ graph and inputs


def test_filters_and_bias_are_one_chunk_each_shared_by_every_block(rng):
    data, extra = make_conv(rng, "NHWC", np.float64)
    x = chunk(data, CHUNKINGS["ones"])["x"]
    y = nd.conv2d(x, extra["w"], extra["b"], padding=1)
    deps = y.dask.dependencies[y.name]
    assert x.name in deps and len(deps) == 3
    for name in deps - {x.name}:  # w and b: one key each, not one per batch chunk
        assert len(y.dask.layers[name]) == 1
    # A Dask filter in several chunks is merged into one too.
    w = da.from_array(extra["w"], chunks=1)
    y2 = nd.conv2d(x, w, padding=1)
    (w_layer,) = y2.dask.dependencies[y2.name] - {x.name}
    assert len(dict(y2.dask.layers[w_layer])) == 1
    np.testing.assert_allclose(y2.compute(scheduler="synchronous"),
                               numbaconv.conv2d(data["x"], extra["w"], padding=1), rtol=1e-12)


def test_the_graph_keeps_the_filters_of_the_call(rng):
    data, extra = make_conv(rng, "NHWC", np.float64)
    want = numbaconv.conv2d(data["x"], extra["w"], extra["b"])
    y = nd.conv2d(chunk(data, (3, 4))["x"], extra["w"], extra["b"])
    extra["w"] += 1  # as a training step updates its weights in place
    extra["b"][:] = 0
    np.testing.assert_array_equal(y.compute(scheduler="synchronous"), want)


def test_array_likes_are_taken_as_one_chunk(rng):
    data, extra = make_conv(rng, "NHWC", np.float64)
    y = nd.conv2d(data["x"].tolist(), extra["w"].tolist(), list(extra["b"]))
    assert isinstance(y, da.Array) and y.numblocks[0] == 1
    np.testing.assert_allclose(y.compute(scheduler="synchronous"),
                               numbaconv.conv2d(data["x"], extra["w"], extra["b"]), rtol=1e-12)


def test_inputs_chunked_differently_along_the_batch_are_aligned(rng):
    data, extra = make_conv_backward(rng, "NCHW", np.float64)
    dy = da.from_array(data["dy"], chunks=(4,) + data["dy"].shape[1:])
    x = da.from_array(data["x"], chunks=(2,) + data["x"].shape[1:])
    dx, dw, db = nd.conv2d_backward(dy, x, extra["w"], **CONV_BACK, data_format="NCHW")
    assert dx.chunks[0] == (2, 2, 2, 1)  # split wherever either input has a boundary
    computed = dask.compute(dx, dw, db, scheduler="synchronous")
    assert_matches(computed, numbaconv.conv2d_backward(data["dy"], data["x"], extra["w"],
                                                       **CONV_BACK, data_format="NCHW"))


def test_an_empty_batch_gives_empty_results(rng):
    data, extra = make_conv_backward(rng, "NHWC", np.float64)
    empty = {k: da.from_array(v[:0], chunks=-1) for k, v in data.items()}
    dx, dw, db = dask.compute(*nd.conv2d_backward(empty["dy"], empty["x"], extra["w"],
                                                  **CONV_BACK), scheduler="synchronous")
    assert dx.shape == (0,) + data["x"].shape[1:]
    np.testing.assert_array_equal(dw, np.zeros_like(extra["w"]))
    np.testing.assert_array_equal(db, np.zeros(4))


def test_other_axes_in_several_chunks_are_merged_with_a_warning(rng):
    data, _ = make_lrn_backward(rng, "NCHW", np.float64)
    x = da.from_array(data["x"], chunks=(2, 3, 2, 3))
    with pytest.warns(da.PerformanceWarning, match="x is chunked along axes other than the"):
        y = nd.lrn(x, **LRN, data_format="NCHW")
    assert y.chunks == ((2, 2, 2, 1), (7,), (4,), (3,))
    np.testing.assert_allclose(y.compute(scheduler="synchronous"),
                               numbaconv.lrn(data["x"], **LRN, data_format="NCHW"), rtol=1e-12)


def test_cols_split_inside_a_sample_are_rechunked_at_sample_boundaries(rng):
    data, extra = make_col2im(rng, "NHWC", np.float64)
    cols = data["cols"]
    rows = cols.shape[0] // N
    lazy = da.from_array(cols, chunks=(rows + 1, cols.shape[1]))
    with pytest.warns(da.PerformanceWarning, match="split samples"):
        x = nd.col2im(lazy, extra["x_shape"], (3, 2), **PATCH)
    assert sum(x.chunks[0]) == N and x.numblocks[0] > 1
    np.testing.assert_allclose(x.compute(scheduler="synchronous"),
                               numbaconv.col2im(cols, extra["x_shape"], (3, 2), **PATCH),
                               rtol=1e-12)


@pytest.mark.parametrize("call, error, match", [
    (lambda d, e: nd.conv2d(d["x"], e["w"][:, :, :2]), ValueError, "w"),
    (lambda d, e: nd.conv2d(d["x"], e["w"], e["b"][:3]), ValueError, "b"),
    (lambda d, e: nd.conv2d(d["x"].astype(complex), e["w"]), TypeError, "x"),
    (lambda d, e: nd.conv2d(d["x"][..., 0], e["w"]), ValueError, "x"),
    (lambda d, e: nd.conv2d(d["x"], e["w"], stride=0), ValueError, "stride"),
    (lambda d, e: nd.conv2d(d["x"], [[1, 2], [3]]), ValueError, "w"),
    (lambda d, e: nd.conv2d_backward(d["x"][:, :, :, :1].repeat(4, axis=3)[:5], d["x"], e["w"],
                                     padding="SAME"), ValueError, "dy and x"),
    (lambda d, e: nd.conv2d_backward(d["x"][:, :, :, :1].repeat(4, axis=3), d["x"], e["w"]),
     ValueError, "dy"),
    (lambda d, e: nd.conv2d_backward(d["x"][:, :, :, :1].repeat(4, axis=3), d["x"], e["w"],
                                     padding="SAME", split_every=1), ValueError, "split_every"),
    (lambda d, e: nd.max_pool2d_backward(d["x"][:, ::2, ::2], d["x"][:, ::2, ::2].astype(int),
                                         (6,) + d["x"].shape[1:]), ValueError, "x_shape"),
    (lambda d, e: nd.max_pool2d_backward(d["x"], d["x"].astype(int), 5), TypeError, "x_shape"),
    (lambda d, e: nd.col2im(nd.im2col(d["x"], 3), (N + 1,) + d["x"].shape[1:], 3),
     ValueError, "cols"),
    (lambda d, e: nd.lrn(d["x"], depth_radius=-1), ValueError, "depth_radius"),
    (lambda d, e: nd.conv2d(d["x"], e["w"][:, :, :1], groups=2), ValueError, "groups"),
    (lambda d, e: nd.conv2d_backward_input(d["x"][:, 1:-1, 1:, :1].repeat(4, axis=3), e["w"],
                                           (N + 1,) + d["x"].shape[1:]), ValueError, "x_shape"),
    (lambda d, e: nd.conv2d_backward_filter(d["x"][:, 1:-1, 1:, :1].repeat(4, axis=3), d["x"],
                                            5), TypeError, "w_shape"),
    (lambda d, e: nd.conv2d_backward_filter(d["x"][:, 1:-1, 1:, :1].repeat(4, axis=3), d["x"],
                                            e["w"].shape, split_every=1), ValueError,
     "split_every"),
    (lambda d, e: nd.max_pool2d(d["x"], 2, dilation=0), ValueError, "dilation"),
    (lambda d, e: nd.max_pool2d_argmax(d["x"], 2, ceil_mode="yes"), TypeError, "ceil_mode"),
    (lambda d, e: nd.max_unpool2d(d["x"][:, ::2, ::2], d["x"][:, ::2, ::2].astype(int),
                                  (6,) + d["x"].shape[1:]), ValueError, "x_shape"),
    (lambda d, e: nd.avg_pool2d(d["x"], 2, count_include_pad=1.5), TypeError,
     "count_include_pad"),
    (lambda d, e: nd.avg_pool2d_backward(d["x"], d["x"].shape, 2), ValueError, "dy"),
    (lambda d, e: nd.adaptive_avg_pool2d(d["x"], 0), ValueError, "output_size"),
    (lambda d, e: nd.adaptive_avg_pool2d_backward(d["x"], d["x"].shape[:3]), ValueError,
     "x_shape"),
    (lambda d, e: nd.lrn(d["x"][d["x"][:, 0, 0, 0] > 0]), ValueError, "compute_chunk_sizes"),
])
def test_bad_input_raises_at_graph_construction_naming_the_argument(call, error, match, rng,
                                                                    monkeypatch):
    data, extra = make_conv(rng, "NHWC", np.float64)
    for name in EAGER_OPS:  # nothing may reach an eager function (or a kernel)
        monkeypatch.setattr(numbaconv, name, None)
    with pytest.raises(error, match=match):
        call(chunk(data, (3, 4)), extra)


def test_signatures_are_those_of_the_eager_functions():
    """Every eager op and keyword (the batch reductions add split_every)."""
    ops = EAGER_OPS
    assert set(ops) <= set(nd.__all__)
    reductions = {"conv2d_backward", "conv2d_transpose_backward", "conv2d_backward_filter"}
    for name in ops:
        lazy = inspect.signature(getattr(nd, name)).parameters
        # out= (a buffer for the result) has no meaning for a lazy result.
        eager = {p: v for p, v in inspect.signature(getattr(numbaconv, name)).parameters.items()
                 if p != "out"}
        extra = {"split_every"} if name in reductions else set()
        assert [p for p in lazy if p not in extra] == list(eager), name
        for p in eager:
            assert lazy[p].default == eager[p].default and lazy[p].kind == eager[p].kind


# ---------------------------------------------------------- dask.distributed


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    # The dashboard on a free port: a busy 8787 would warn (an error here).
    cluster = nd.local_cluster(2, dashboard_address=":0", silence_logs=logging.ERROR)
    try:
        with Client(cluster, timeout=TIMEOUT) as client:
            client.wait_for_workers(2, timeout=TIMEOUT)
            yield client
    finally:
        cluster.close(timeout=30)


def on_cluster(client, *arrays):
    return tuple(f.result(timeout=TIMEOUT) for f in client.compute(list(arrays)))


def _worker_setup():
    import numba

    return (multiprocessing.get_start_method(allow_none=True),
            multiprocessing.parent_process() is not None, numba.get_num_threads())


def test_the_cluster_spawns_single_threaded_workers_with_numba_threads_per_core_share(client):
    assert dask.config.get("distributed.worker.multiprocessing-method") == "spawn"
    threads = client.nthreads()
    assert sorted(threads.values()) == [1, 1]
    # Run as tasks: Numba's thread count belongs to the thread that runs them.
    futures = [client.submit(_worker_setup, pure=False, workers=[address])
               for address in threads]
    expected = max(1, nd.available_cores() // 2)
    for future in futures:
        assert future.result(timeout=TIMEOUT) == ("spawn", True, expected)


def test_local_cluster_refuses_fork():
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}), \
            pytest.raises(ValueError, match="spawn"):
        nd.local_cluster(1)


@pytest.mark.parametrize("fmt", LAYOUTS)
def test_a_forward_and_backward_pass_on_the_cluster_match_eager_and_synchronous(fmt, client,
                                                                                rng):
    data, extra = make_conv_backward(rng, fmt, np.float32, geometry={"padding": "SAME"})
    lazy = chunk(data, (3, 3, 1))
    y = nd.conv2d(lazy["x"], extra["w"], extra["b"], padding="SAME", data_format=fmt)
    pooled, argmax = nd.max_pool2d_argmax(nd.lrn(y, **LRN, data_format=fmt), 2,
                                          data_format=fmt)
    grads = nd.conv2d_backward(lazy["dy"], lazy["x"], extra["w"], padding="SAME",
                               data_format=fmt, split_every=2)
    grads += (nd.conv2d_backward_filter(lazy["dy"], lazy["x"], extra["w"].shape,
                                        padding="SAME", data_format=fmt, split_every=2),)
    distributed = on_cluster(client, pooled, argmax, *grads)
    again = on_cluster(client, *grads[1:])
    eager_pooled, eager_argmax = numbaconv.max_pool2d_argmax(
        numbaconv.lrn(numbaconv.conv2d(data["x"], extra["w"], extra["b"], padding="SAME",
                                       data_format=fmt), **LRN, data_format=fmt),
        2, data_format=fmt)
    eager = (eager_pooled, eager_argmax, *numbaconv.conv2d_backward(
        data["dy"], data["x"], extra["w"], padding="SAME", data_format=fmt),
        numbaconv.conv2d_backward_filter(data["dy"], data["x"], extra["w"].shape,
                                         padding="SAME", data_format=fmt))
    for got, want in zip(distributed, eager, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)
    # Same chunking, same tree, same Numba threads per worker: the same bits.
    # (Not those of the in-process run: the eager dw and db kernels sum
    # per-thread partials, so their float32 bits follow the thread count.)
    for got, repeat in zip(distributed[3:], again, strict=True):
        np.testing.assert_array_equal(got, repeat)


def test_the_readme_dask_example_runs_as_written():
    import pathlib
    import re
    import warnings

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"```python\n(import dask\n.*?)```", readme, re.S).group(1)
    namespace = {"__name__": "__main__"}
    with warnings.catch_warnings():
        # The README keeps Dask's default dashboard port, 8787; another cluster
        # on this machine may hold it, and Dask then warns and takes another.
        warnings.filterwarnings("ignore", message="Port 8787 is already in use",
                                category=UserWarning)
        exec(compile(block, "README.md", "exec"), namespace)
    w = namespace["w"]
    x = namespace["x"].compute(scheduler="synchronous")
    y = numbaconv.conv2d(x, w, padding="SAME")
    _, want_dw, want_db = numbaconv.conv2d_backward(y, x, w, padding="SAME")
    scale = np.abs(want_dw).max()
    np.testing.assert_allclose(namespace["dw"], want_dw, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(namespace["db"], want_db, rtol=1e-4,
                               atol=1e-5 * np.abs(want_db).max())
