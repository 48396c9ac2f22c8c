"""numbaconv's ops on Dask arrays chunked along the batch axis.

Every function here has the signature of its eager twin in ``numbaconv`` and
returns Dask arrays built lazily with ``blockwise``: nothing runs, and no
kernel compiles, until ``.compute()``. Each batch chunk is then one call of
the eager function on that chunk.

- The batch axis is axis 0 in both layouts (NHWC and NCHW). The data inputs
  (``x``, ``dy``, ``y`` of ``max_unpool2d``, ``argmax``, ``cols``) should be
  Dask arrays chunked along it only; other axes are rechunked into one chunk,
  with a ``dask.array.PerformanceWarning``. Array-likes are taken as one chunk.
  The batch chunks of two data inputs are unified (split where either has a
  boundary). ``cols`` (``col2im``) is chunked at sample boundaries:
  ``OH * OW`` rows per sample, as ``im2col`` chunks its output.
- Filters and biases (``w``, ``b``) are passed whole to every block: a NumPy
  or array-like value is copied once into the graph as a single-chunk Dask
  array (so later changes to the caller's array do not leak into the
  graph); a Dask array is rechunked into one chunk.
- An ``x_shape`` argument's batch entry follows the chunk: each block gets
  ``(chunk size,) + x_shape[1:]``.
- Per-sample outputs (forward results, ``dx``, ``argmax``, ``im2col``'s rows)
  are chunked like the batch. The gradients summed over the batch (``dw`` and
  ``db`` of ``conv2d_backward`` and ``conv2d_transpose_backward``, ``dw`` of
  ``conv2d_backward_filter``) are the per-chunk results summed by a tree
  reduction (``split_every`` chunks per node), whose order depends only on the
  chunking: two computations with the same chunking give bit-identical results.
- Arguments are validated when the graph is built, by calling the NumPy
  reference (``numbaconv.reference``) on an empty batch: the same
  ``ValueError``/``TypeError`` as the eager call, and the output shapes and
  dtypes, without compiling anything.

On ``dask.distributed``, use worker *processes* with one Dask thread each and
give each process's Numba pool the cores of its share (:func:`local_cluster`
does both); see the README's "Dask" section.
"""
import asyncio
import functools
import operator
import os
import threading
import warnings
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from distributed import WorkerPlugin

import numbaconv
import numbaconv.reference

__all__ = [
    "conv2d", "conv2d_backward", "conv2d_backward_input", "conv2d_backward_filter",
    "conv2d_transpose", "conv2d_transpose_backward",
    "im2col", "col2im",
    "max_pool2d", "max_pool2d_argmax", "max_pool2d_backward", "max_unpool2d",
    "avg_pool2d", "avg_pool2d_backward", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "lrn", "lrn_backward", "local_cluster", "NumbaThreads", "available_cores", "SPLIT_EVERY",
]

# Partial sums combined per node of the batch reduction tree.
SPLIT_EVERY = 8

# Kinds of argument.
BATCH = "batch"  # data with one sample per index of axis 0
ROWS = "rows"    # data with rows_per_sample rows per sample along axis 0 (col2im's cols)
WHOLE = "whole"  # passed whole to every block (w, b)
SHAPE = "shape"  # an x_shape: its batch entry becomes the block's
# Kinds of output.
SAMPLE = "sample"  # chunked like the batch
SAMPLE_ROWS = "sample rows"  # rows_per_sample rows per sample (im2col)
SUM = "sum"  # summed over the batch

_LETTERS = "abcdefghijklmopqrstuvwxyz"  # array indices for blockwise; "n" is the batch


# ------------------------------------------------------------------ the ops


def conv2d(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, data_format="NHWC"):
    """Lazy :func:`numbaconv.conv2d`: ``y`` chunked like ``x``."""
    return _lazy("conv2d", [(BATCH, "x", x), (WHOLE, "w", w), (WHOLE, "b", b)],
                 {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                  "data_format": data_format}, (SAMPLE,))


def conv2d_backward(dy, x, w, *, stride=1, padding=0, dilation=1, groups=1, data_format="NHWC",
                    split_every=SPLIT_EVERY):
    """Lazy :func:`numbaconv.conv2d_backward`.

    ``dx`` is chunked like ``x``; ``dw`` and ``db`` are summed over the batch
    chunks by a tree reduction (``split_every`` partials per node).
    """
    return _lazy("conv2d_backward", [(BATCH, "dy", dy), (BATCH, "x", x), (WHOLE, "w", w)],
                 {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                  "data_format": data_format}, (SAMPLE, SUM, SUM), split_every=split_every)


def conv2d_backward_input(dy, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1,
                          data_format="NHWC"):
    """Lazy :func:`numbaconv.conv2d_backward_input`: ``dx`` chunked like ``dy``."""
    return _lazy("conv2d_backward_input",
                 [(BATCH, "dy", dy), (WHOLE, "w", w), (SHAPE, "x_shape", x_shape)],
                 {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                  "data_format": data_format}, (SAMPLE,))


def conv2d_backward_filter(dy, x, w_shape, *, stride=1, padding=0, dilation=1, groups=1,
                           data_format="NHWC", split_every=SPLIT_EVERY):
    """Lazy :func:`numbaconv.conv2d_backward_filter`.

    ``dw`` is summed over the batch chunks by a tree reduction
    (``split_every`` partials per node).
    """
    return _lazy("conv2d_backward_filter",
                 [(BATCH, "dy", dy), (BATCH, "x", x), (None, "w_shape", w_shape)],
                 {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                  "data_format": data_format}, (SUM,), split_every=split_every)


def conv2d_transpose(x, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1,
                     groups=1, data_format="NHWC"):
    """Lazy :func:`numbaconv.conv2d_transpose`: ``y`` chunked like ``x``."""
    return _lazy("conv2d_transpose", [(BATCH, "x", x), (WHOLE, "w", w), (WHOLE, "b", b)],
                 {"stride": stride, "padding": padding, "output_padding": output_padding,
                  "dilation": dilation, "groups": groups, "data_format": data_format},
                 (SAMPLE,))


def conv2d_transpose_backward(dy, x, w, *, stride=1, padding=0, output_padding=0, dilation=1,
                              groups=1, data_format="NHWC", split_every=SPLIT_EVERY):
    """Lazy :func:`numbaconv.conv2d_transpose_backward`.

    ``dx`` is chunked like ``x``; ``dw`` and ``db`` are summed over the batch
    chunks by a tree reduction (``split_every`` partials per node).
    """
    return _lazy("conv2d_transpose_backward",
                 [(BATCH, "dy", dy), (BATCH, "x", x), (WHOLE, "w", w)],
                 {"stride": stride, "padding": padding, "output_padding": output_padding,
                  "dilation": dilation, "groups": groups, "data_format": data_format},
                 (SAMPLE, SUM, SUM), split_every=split_every)


def im2col(x, kernel_size, *, stride=1, padding=0, dilation=1, data_format="NHWC"):
    """Lazy :func:`numbaconv.im2col`: a chunk of ``n`` samples gives ``n * OH * OW`` rows."""
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation,
              "data_format": data_format}
    return _lazy("im2col", [(BATCH, "x", x), (None, "kernel_size", kernel_size)], kwargs,
                 (SAMPLE_ROWS,),
                 rows_per_sample=lambda shape: _rows_per_sample(shape, kernel_size, kwargs))


def col2im(cols, x_shape, kernel_size, *, stride=1, padding=0, dilation=1, data_format="NHWC"):
    """Lazy :func:`numbaconv.col2im`.

    ``cols`` must be chunked at sample boundaries (``OH * OW`` rows each, as
    :func:`im2col` gives them); it is rechunked with a warning otherwise.
    """
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation,
              "data_format": data_format}
    return _lazy("col2im", [(ROWS, "cols", cols), (SHAPE, "x_shape", x_shape),
                            (None, "kernel_size", kernel_size)], kwargs, (SAMPLE,),
                 rows_per_sample=lambda shape: _rows_per_sample(shape, kernel_size, kwargs))


def max_pool2d(x, pool_size, *, stride=None, padding=0, dilation=1, ceil_mode=False,
               data_format="NHWC"):
    """Lazy :func:`numbaconv.max_pool2d`: ``y`` chunked like ``x``."""
    return _lazy("max_pool2d", [(BATCH, "x", x), (None, "pool_size", pool_size)],
                 {"stride": stride, "padding": padding, "dilation": dilation,
                  "ceil_mode": ceil_mode, "data_format": data_format}, (SAMPLE,))


def max_pool2d_argmax(x, pool_size, *, stride=None, padding=0, dilation=1, ceil_mode=False,
                      data_format="NHWC"):
    """Lazy :func:`numbaconv.max_pool2d_argmax`.

    ``y`` and ``argmax`` are chunked like ``x`` (one kernel call per chunk for both).
    """
    return _lazy("max_pool2d_argmax", [(BATCH, "x", x), (None, "pool_size", pool_size)],
                 {"stride": stride, "padding": padding, "dilation": dilation,
                  "ceil_mode": ceil_mode, "data_format": data_format}, (SAMPLE, SAMPLE))


def max_pool2d_backward(dy, argmax, x_shape, *, data_format="NHWC"):
    """Lazy :func:`numbaconv.max_pool2d_backward`: ``dx`` chunked like ``dy``."""
    return _lazy("max_pool2d_backward", [(BATCH, "dy", dy), (BATCH, "argmax", argmax),
                                         (SHAPE, "x_shape", x_shape)],
                 {"data_format": data_format}, (SAMPLE,))


def max_unpool2d(y, argmax, x_shape, *, data_format="NHWC"):
    """Lazy :func:`numbaconv.max_unpool2d`: ``x`` chunked like ``y``."""
    return _lazy("max_unpool2d", [(BATCH, "y", y), (BATCH, "argmax", argmax),
                                  (SHAPE, "x_shape", x_shape)],
                 {"data_format": data_format}, (SAMPLE,))


def avg_pool2d(x, pool_size, *, stride=None, padding=0, ceil_mode=False,
               count_include_pad=False, data_format="NHWC"):
    """Lazy :func:`numbaconv.avg_pool2d`: ``y`` chunked like ``x``."""
    return _lazy("avg_pool2d", [(BATCH, "x", x), (None, "pool_size", pool_size)],
                 {"stride": stride, "padding": padding, "ceil_mode": ceil_mode,
                  "count_include_pad": count_include_pad, "data_format": data_format},
                 (SAMPLE,))


def avg_pool2d_backward(dy, x_shape, pool_size, *, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=False, data_format="NHWC"):
    """Lazy :func:`numbaconv.avg_pool2d_backward`: ``dx`` chunked like ``dy``."""
    return _lazy("avg_pool2d_backward", [(BATCH, "dy", dy), (SHAPE, "x_shape", x_shape),
                                         (None, "pool_size", pool_size)],
                 {"stride": stride, "padding": padding, "ceil_mode": ceil_mode,
                  "count_include_pad": count_include_pad, "data_format": data_format},
                 (SAMPLE,))


def adaptive_avg_pool2d(x, output_size, *, data_format="NHWC"):
    """Lazy :func:`numbaconv.adaptive_avg_pool2d`: ``y`` chunked like ``x``."""
    return _lazy("adaptive_avg_pool2d", [(BATCH, "x", x), (None, "output_size", output_size)],
                 {"data_format": data_format}, (SAMPLE,))


def adaptive_avg_pool2d_backward(dy, x_shape, *, data_format="NHWC"):
    """Lazy :func:`numbaconv.adaptive_avg_pool2d_backward`: ``dx`` chunked like ``dy``."""
    return _lazy("adaptive_avg_pool2d_backward",
                 [(BATCH, "dy", dy), (SHAPE, "x_shape", x_shape)],
                 {"data_format": data_format}, (SAMPLE,))


def lrn(x, *, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, data_format="NHWC"):
    """Lazy :func:`numbaconv.lrn`: ``y`` chunked like ``x``."""
    return _lazy("lrn", [(BATCH, "x", x)],
                 {"depth_radius": depth_radius, "bias": bias, "alpha": alpha, "beta": beta,
                  "data_format": data_format}, (SAMPLE,))


def lrn_backward(dy, x, *, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, data_format="NHWC"):
    """Lazy :func:`numbaconv.lrn_backward`: ``dx`` chunked like ``x``."""
    return _lazy("lrn_backward", [(BATCH, "dy", dy), (BATCH, "x", x)],
                 {"depth_radius": depth_radius, "bias": bias, "alpha": alpha, "beta": beta,
                  "data_format": data_format}, (SAMPLE,))


# -------------------------------------------------------------- the engine


def _lazy(op, args, kwargs, outputs, *, rows_per_sample=None, split_every=SPLIT_EVERY):
    """The Dask graph of ``numbaconv.<op>(*args, **kwargs)`` applied per batch chunk.

    ``args`` are ``(kind, name, value)`` in the eager call's positional order
    (kind None: a plain value passed as is); ``outputs`` the kind of each
    result. ``rows_per_sample(x_shape)`` gives im2col's OH * OW rows per sample.
    """
    split_every = _split_every(split_every)
    args = [(kind, name, _prepare(kind, name, value)) for kind, name, value in args]
    # Validation, output shapes and dtypes: the reference on an empty batch.
    metas = getattr(numbaconv.reference, op)(*[_empty_batch(kind, value)
                                               for kind, _, value in args], **kwargs)
    metas = metas if isinstance(metas, tuple) else (metas,)
    rows = None
    if rows_per_sample is not None:
        rows = rows_per_sample(_sample_shape(args))
    _check_batch_sizes(args, rows)
    args = _chunk(args, rows)

    letters = iter(_LETTERS)
    kinds, arrays = [], []
    for kind, _, value in args:
        if isinstance(value, da.Array):
            batch = kind in (BATCH, ROWS)
            ind = "n" * batch + "".join(next(letters) for _ in range(value.ndim - batch))
            arrays += [value, ind]
            kinds.append((kind, True, rows if kind == ROWS else None))
        else:
            kinds.append((kind, False, value))
    call = functools.partial(_call_block, op, tuple(kinds), kwargs)
    token = tokenize(op, kinds, kwargs, outputs, split_every, *arrays[::2])
    # Chunks of cols (rows) become chunks of samples.
    to_samples = (lambda c: c // rows) if any(k == ROWS for k, _, _ in args) else None

    if outputs == (SUM,):  # conv2d_backward_filter: one partial per chunk, then the tree
        partials = _blocks(SUM, metas[0], f"numbaconv-{op}-{token}",
                           functools.partial(_as_partial, call), arrays, letters, rows, None)
        return partials.sum(axis=0, dtype=metas[0].dtype, split_every=split_every)
    if len(outputs) == 1:
        return _blocks(outputs[0], metas[0], f"numbaconv-{op}-{token}", call, arrays, letters,
                       rows, to_samples)
    # One eager call per chunk for all outputs: a tuple per block, then one
    # layer per output that picks it.
    parts = da.blockwise(call, "n", *arrays, name=f"numbaconv-{op}-{token}", dtype=object,
                         meta=np.empty((0,), object), concatenate=True,
                         adjust_chunks=None if to_samples is None else {"n": to_samples})
    results = []
    for i, (kind, meta) in enumerate(zip(outputs, metas, strict=True)):
        name = f"numbaconv-{op}-{i}-{token}"
        if kind == SUM:
            partials = _blocks(SUM, meta, name, functools.partial(_pick_partial, i),
                               [parts, "n"], letters, rows, None)
            results.append(partials.sum(axis=0, dtype=meta.dtype, split_every=split_every))
        else:
            results.append(_blocks(kind, meta, name, functools.partial(_pick, i), [parts, "n"],
                                   letters, rows, None))
    return tuple(results)


def _blocks(kind, meta, name, func, arrays, letters, rows, to_samples):
    """The blockwise layer of one output of kind ``kind`` shaped like ``meta`` (empty batch).

    A ``SUM`` output is the per-chunk partials stacked along a new axis 0.
    """
    sizes = meta.shape if kind == SUM else meta.shape[1:]
    axes = [next(letters) for _ in sizes]
    adjust: Any
    if kind == SUM:
        adjust = 1
    elif kind == SAMPLE_ROWS:  # from samples (im2col takes no cols)
        adjust = functools.partial(operator.mul, rows)
    else:
        adjust = to_samples
    return da.blockwise(
        func, "n" + "".join(axes), *arrays, name=name, dtype=meta.dtype,
        meta=np.empty((0,) * (len(sizes) + 1), meta.dtype), concatenate=True,
        new_axes=dict(zip(axes, sizes, strict=True)),
        adjust_chunks=None if adjust is None else {"n": adjust},
    )


def _call_block(op, kinds, kwargs, *blocks):
    """One eager call on one batch chunk (run by the scheduler)."""
    arrays = iter(blocks)
    values = [next(arrays) if is_array else payload for _, is_array, payload in kinds]
    samples = next(value.shape[0] // (payload or 1) for (kind, is_array, payload), value
                   in zip(kinds, values, strict=True) if is_array and kind in (BATCH, ROWS))
    values = [(samples,) + tuple(value[1:]) if kind == SHAPE else value
              for (kind, _, _), value in zip(kinds, values, strict=True)]
    return getattr(numbaconv, op)(*values, **kwargs)


def _pick(i, parts):
    return parts[i]


def _pick_partial(i, parts):
    return parts[i][np.newaxis]


def _as_partial(call, *blocks):
    return call(*blocks)[np.newaxis]


def _split_every(value):
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"split_every must be an integer >= 2, got {value!r}") from None
    if value < 2:
        raise ValueError(f"split_every must be an integer >= 2, got {value}")
    return value


def _prepare(kind, name, value):
    """Data as Dask arrays of known chunk sizes, filters as one chunk, shapes as tuples."""
    if kind in (BATCH, ROWS):
        if not isinstance(value, da.Array):
            return da.from_array(_numpy(value, name), chunks=-1)
        if any(np.isnan(size) for size in value.shape):
            raise ValueError(f"{name} has unknown chunk sizes (shape {value.shape}): call "
                             f"{name}.compute_chunk_sizes() first")
        return value
    if kind == WHOLE:
        if value is None:
            return None
        if isinstance(value, da.Array):
            return value.rechunk(-1)
        # A copy: the graph keeps the value of the call, as the eager function uses it.
        return da.from_array(np.array(_numpy(value, name)), chunks=-1)
    if kind == SHAPE:
        try:
            return tuple(value)
        except TypeError:
            raise TypeError(f"{name} must be a sequence of 4 ints, got {value!r}") from None
    return value


def _numpy(value, name):
    try:
        return np.asarray(value)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} is not a rectangular array: {err}") from None


def _empty_batch(kind, value):
    """The stand-in of an argument in the validating reference call: an empty batch."""
    if kind in (BATCH, ROWS):
        return np.empty((0,) + value.shape[1:] if value.ndim else (), value.dtype)
    if kind == WHOLE:
        return None if value is None else np.zeros(value.shape, value.dtype)
    if kind == SHAPE and value:
        return (0,) + value[1:]
    return value


def _sample_shape(args):
    """The shape of one sample of the data (from x_shape where there is one)."""
    for kind, _, value in args:
        if kind == SHAPE:
            return (1,) + value[1:]
    return next((1,) + value.shape[1:] for kind, _, value in args if kind == BATCH)


def _rows_per_sample(shape, kernel_size, kwargs):
    """im2col's rows per sample (OH * OW) for samples of ``shape`` (batch 1)."""
    return numbaconv.reference.im2col(np.zeros(shape, np.float32), kernel_size,
                                      **kwargs).shape[0]


def _check_batch_sizes(args, rows):
    """Check that every data input and x_shape agree on the batch size.

    The validation on an empty batch cannot see it.
    """
    sizes = [(name, value.shape) for kind, name, value in args if kind == BATCH]
    for name, shape in sizes[1:]:
        if shape[0] != sizes[0][1][0]:
            raise ValueError(f"{sizes[0][0]} and {name} must have the same batch size, got "
                             f"shapes {sizes[0][1]} and {shape}")
    for kind, name, value in args:
        if kind != SHAPE:
            continue
        try:
            batch = operator.index(value[0])
        except TypeError:
            raise TypeError(f"{name}[0] must be an int, got {value!r}") from None
        if sizes and batch != sizes[0][1][0]:
            raise ValueError(f"{name} {value} must have the batch size of {sizes[0][0]}, "
                             f"shape {sizes[0][1]}")
        for data_kind, data_name, data in args:
            if data_kind == ROWS and data.shape[0] != batch * rows:
                raise ValueError(
                    f"{data_name} of shape {data.shape} must have {name}[0] * OH * OW = "
                    f"{batch} * {rows} = {batch * rows} rows ({name} {value})")


def _chunk(args, rows):
    """Rechunk the inputs as the blocks need them.

    One chunk along every axis but the batch; cols split at sample
    boundaries; the batch chunks of all data inputs the same.
    """
    chunked = []
    for kind, name, value in args:
        if kind in (BATCH, ROWS) and any(len(c) > 1 for c in value.chunks[1:]):
            warnings.warn(f"numbaconv.dask: {name} is chunked along axes other than the batch "
                          f"(chunks {value.chunks}); rechunking them into one chunk",
                          da.PerformanceWarning, stacklevel=4)
            value = value.rechunk({axis: -1 for axis in range(1, value.ndim)})
        if kind == ROWS and any(size % rows for size in value.chunks[0]):
            warnings.warn(f"numbaconv.dask: {name}'s row chunks {value.chunks[0]} split samples "
                          f"({rows} rows each); rechunking at sample boundaries",
                          da.PerformanceWarning, stacklevel=4)
            ends = np.unique(-(-np.cumsum(value.chunks[0]) // rows) * rows)
            value = value.rechunk({0: tuple(np.diff(ends, prepend=0).tolist())})
        chunked.append((kind, name, value))
    batch = [value.chunks[0] for kind, _, value in chunked if kind == BATCH]
    if len(set(batch)) > 1:
        # Split wherever any input has a chunk boundary (what dask's unify_chunks does).
        ends = np.unique(np.concatenate([np.cumsum(c) for c in batch]))
        common = tuple(np.diff(ends, prepend=0).tolist())
        chunked = [(kind, name, value.rechunk({0: common}) if kind == BATCH else value)
                   for kind, name, value in chunked]
    return chunked


# ---------------------------------------------------------- dask.distributed


class NumbaThreads(WorkerPlugin):
    """A worker plugin: ``numba.set_num_threads(n)`` in every task thread of each worker.

    Numba's thread count belongs to the calling thread, so it is set in each
    of the worker's executor threads (and ``n`` is capped at the Numba pool's
    size, ``NUMBA_NUM_THREADS``). Register it with
    ``client.register_plugin(NumbaThreads(n))`` or pass it to the workers as
    ``LocalCluster(..., plugins=(NumbaThreads(n),))`` (:func:`local_cluster`
    does). Setting ``NUMBA_NUM_THREADS`` in the workers' environment works too,
    but only where it is set before the worker process imports Numba (for
    instance ``NUMBA_NUM_THREADS=4 dask worker ...``); with ``LocalCluster(env=...)``
    it comes too late when the script's ``__main__`` imports numbaconv, because
    a spawned worker imports ``__main__`` first.
    """

    name = "numbaconv-numba-threads"

    def __init__(self, n):
        self.n = operator.index(n)
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {n}")

    async def setup(self, worker):
        """Set Numba's thread count in each of the worker's task threads."""
        threads = worker.state.nthreads
        # One call per executor thread: the barrier keeps each call in a thread of its own.
        barrier = threading.Barrier(threads)
        executor = worker.executors["default"]
        await asyncio.gather(*[asyncio.wrap_future(executor.submit(_set_numba_threads, self.n,
                                                                   barrier))
                               for _ in range(threads)])


def _set_numba_threads(n, barrier):
    import numba

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    barrier.wait(timeout=60)


def available_cores():
    """The cores this process may run on (its CPU affinity where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def local_cluster(n_workers=2, *, numba_threads=None, **kwargs):
    """A ``distributed.LocalCluster`` set up for numbaconv's kernels.

    ``n_workers`` spawned worker processes with one Dask thread each, and
    Numba's thread count in each set to ``numba_threads`` (default: the
    available cores divided among the workers, at least 1), so that Dask and
    Numba threads do not oversubscribe the cores. Other keywords go to
    ``LocalCluster``. Raises ``ValueError`` if Dask is configured to start
    workers other than with ``spawn`` (``distributed.worker.multiprocessing-method``):
    Numba's OpenMP threading layer is not fork-safe.
    """
    from distributed import LocalCluster

    method = dask.config.get("distributed.worker.multiprocessing-method")
    if method != "spawn":
        raise ValueError(f"distributed.worker.multiprocessing-method is {method!r}: numbaconv's "
                         f"workers must start with 'spawn' (Numba's OpenMP layer is not "
                         f"fork-safe); dask.config.set({{'distributed.worker."
                         f"multiprocessing-method': 'spawn'}})")
    n_workers = operator.index(n_workers)
    if numba_threads is None:
        numba_threads = max(1, available_cores() // max(n_workers, 1))
    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                        plugins=(NumbaThreads(numba_threads),), **kwargs)
