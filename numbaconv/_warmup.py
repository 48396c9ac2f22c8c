"""Compile (or load) every kernel ahead of the first real call, and describe the kernel cache.

The steps below call the public ops on tiny inputs chosen so that together
they reach every kernel the public ops can reach: the convolution
strategies ("planes" for narrow layers, "patch GEMM" for wide ones,
"Winograd" for 3x3 stride-1 ones, see ``_plan``) for the forward pass, the
input gradient and the filter gradient, "dots" for layers into a few
channels (forward and gradients) and "taps" for filter gradients, in both layouts (every kernel
serves both: the NCHW calls check that no layout needs a compiled
signature of its own). ``python -m numbaconv warmup`` runs the same steps
with progress.
"""
import importlib
import pkgutil
import time
from collections.abc import Callable, Iterable

import numpy as np
from numpy.typing import DTypeLike

from ._api import public

LAYOUTS = ("NHWC", "NCHW")


def _nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def _oihw(w):
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def _conv_step(c_in, c_out, backward):
    """Forward (and transpose) or backward (and transpose backward) conv on a C_in -> C_out layer.

    3x3 filters on a 4x16 plane: with 2 -> 2 channels every pass takes the
    planes strategy, with 16 -> 32 (forward) or 48 (backward) every pass the
    patch GEMM (the reduction of the forward pass and the filter gradient is
    144 long, that of the input gradient 288 or 432, all into >= 16
    channels over few pixels), its forward passes into 32 reading padded
    rows of x (``_plan.padded_rows``: 16 columns); and a forward into 80
    channels over 4x4 pixels, whose filter is read in place
    (``_plan.filters_in_place``).
    """
    def step(nc, dtype):
        x = np.ones((1, 4, 16, c_in), dtype)
        w = np.ones((3, 3, c_in, c_out), dtype)
        b = np.ones(c_out, dtype)
        for layout in LAYOUTS:
            xl, wl = (_nchw(x), _oihw(w)) if layout == "NCHW" else (x, w)
            y = nc.conv2d(xl, wl, b, padding=1, data_format=layout)
            if backward:
                nc.conv2d_backward(y, xl, wl, padding=1, data_format=layout)
                nc.conv2d_transpose_backward(xl, y, wl, padding=1, data_format=layout)
            else:
                nc.conv2d_transpose(y, wl, np.ones(c_in, dtype), padding=1, data_format=layout)
                # 16 pixels into 80 channels: the filter read in place (NCHW: W @ patches).
                wide = np.ones((3, 3, c_in, 80), dtype)
                nc.conv2d(xl[:, :4, :4] if layout == "NHWC" else xl[:, :, :4, :4],
                          _oihw(wide) if layout == "NCHW" else wide, padding=1, data_format=layout)
    return step


def _taps_step(nc, dtype):
    """The filter gradient by taps (``_plan.dw_by_taps``): 16 -> 32 on a short plane grid.

    (Into 48 channels, as in the patch GEMM's backward step, it is the patch
    GEMM's.)
    """
    x = np.ones((1, 4, 16, 16), dtype)
    dy = np.ones((1, 4, 16, 32), dtype)
    for layout in LAYOUTS:
        xl, dyl = (_nchw(x), _nchw(dy)) if layout == "NCHW" else (x, dy)
        w_shape = (32, 16, 3, 3) if layout == "NCHW" else (3, 3, 16, 32)
        nc.conv2d_backward_filter(dyl, xl, w_shape, padding=1, data_format=layout)


def _dots_step(nc, dtype):
    """Conv by dots and its gradients (``_plan.by_dots``): 256 channels into 2 on 3x3 planes, rows of 512.

    (The transpose shares the input gradient's kernel.)
    """
    x = np.ones((1, 4, 4, 256), dtype)
    w = np.ones((2, 2, 256, 2), dtype)
    for layout in LAYOUTS:
        xl, wl = (_nchw(x), _oihw(w)) if layout == "NCHW" else (x, w)
        y = nc.conv2d(xl, wl, data_format=layout)
        nc.conv2d_backward(y, xl, wl, data_format=layout)


def _winograd_step(nc, dtype):
    """3x3 stride-1 conv and its gradients by Winograd (``_plan.by_winograd``, ``dw_by_winograd``).

    (The transpose shares the forward's kernels.)
    """
    x = np.ones((1, 16, 32, 24), dtype)
    w = np.ones((3, 3, 24, 24), dtype)
    for layout in LAYOUTS:
        xl, wl = (_nchw(x), _oihw(w)) if layout == "NCHW" else (x, w)
        y = nc.conv2d(xl, wl, padding=1, data_format=layout)
        nc.conv2d_backward(y, xl, wl, padding=1, data_format=layout)


def _patches_step(nc, dtype):
    x = np.ones((1, 4, 4, 2), dtype)
    for layout in LAYOUTS:
        xl = _nchw(x) if layout == "NCHW" else x
        nc.col2im(nc.im2col(xl, 3, padding=1, data_format=layout), xl.shape, 3, padding=1,
                  data_format=layout)


def _depthwise_step(nc, dtype):
    """Depthwise conv (groups = C_in) forward and gradients; other group counts run the dense kernels."""
    x = np.ones((1, 4, 4, 2), dtype)
    w = np.ones((3, 3, 1, 2), dtype)
    for layout in LAYOUTS:
        xl, wl = (_nchw(x), _oihw(w)) if layout == "NCHW" else (x, w)
        y = nc.conv2d(xl, wl, np.ones(2, dtype), padding=1, groups=2, data_format=layout)
        nc.conv2d_backward(y, xl, wl, padding=1, groups=2, data_format=layout)


def _pool_step(nc, dtype):
    x = np.arange(32, dtype=dtype).reshape(1, 4, 4, 2)
    for layout in LAYOUTS:
        xl = _nchw(x) if layout == "NCHW" else x
        nc.max_pool2d(xl, 2, data_format=layout)
        pooled, argmax = nc.max_pool2d_argmax(xl, 2, data_format=layout)
        nc.max_pool2d_backward(pooled, argmax, xl.shape, data_format=layout)
        nc.max_unpool2d(pooled, argmax, xl.shape, data_format=layout)


def _avg_pool_step(nc, dtype):
    x = np.arange(32, dtype=dtype).reshape(1, 4, 4, 2)
    for layout in LAYOUTS:
        xl = _nchw(x) if layout == "NCHW" else x
        nc.avg_pool2d_backward(nc.avg_pool2d(xl, 2, data_format=layout), xl.shape, 2,
                               data_format=layout)
        nc.adaptive_avg_pool2d_backward(nc.adaptive_avg_pool2d(xl, 1, data_format=layout),
                                        xl.shape, data_format=layout)


def _lrn_step(nc, dtype):
    x = np.ones((1, 4, 4, 2), dtype)
    for layout in LAYOUTS:
        xl = _nchw(x) if layout == "NCHW" else x
        nc.lrn(xl, depth_radius=1, data_format=layout)
        nc.lrn_backward(xl, xl, depth_radius=1, data_format=layout)


# (label, step): each step runs its ops in both layouts.
STEPS: list[tuple[str, Callable]] = [
    ("conv2d, conv2d_transpose (planes)", _conv_step(2, 2, backward=False)),
    ("conv2d_backward, conv2d_transpose_backward (planes)", _conv_step(2, 2, backward=True)),
    ("conv2d, conv2d_transpose (patch GEMM)", _conv_step(16, 32, backward=False)),
    ("conv2d_backward, conv2d_transpose_backward (patch GEMM)", _conv_step(16, 48, backward=True)),
    ("conv2d_backward_filter (taps)", _taps_step),
    ("conv2d, conv2d_backward (dots)", _dots_step),
    ("conv2d, conv2d_backward (Winograd)", _winograd_step),
    ("conv2d, conv2d_backward (depthwise)", _depthwise_step),
    ("im2col, col2im", _patches_step),
    ("max_pool2d, max_pool2d_argmax, max_pool2d_backward, max_unpool2d", _pool_step),
    ("avg_pool2d, adaptive_avg_pool2d and their backwards", _avg_pool_step),
    ("lrn, lrn_backward", _lrn_step),
]


def kernels():
    """Every Numba dispatcher in ``numbaconv._kernels``: {"module.name": dispatcher}."""
    from numba.core.registry import CPUDispatcher

    from . import _kernels

    found: dict = {}
    for info in pkgutil.iter_modules(_kernels.__path__):
        module = importlib.import_module(f"{_kernels.__name__}.{info.name}")
        for obj in vars(module).values():
            # Module-level dispatchers defined in this module (not imported ones).
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module.__name__:
                found.setdefault(f"{info.name}.{obj.py_func.__name__}", obj)
    return found


def _counts(dispatchers):
    return {name: (sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values()))
            for name, d in dispatchers.items()}


def run(dtypes: Iterable[DTypeLike], report: Callable[[str], None] | None = None) -> float:
    """Run every step for every dtype; ``report`` gets one line per step (kernels compiled and loaded)."""
    import numbaconv as nc

    chosen = [np.dtype(d) for d in dtypes]
    for d in chosen:
        if d.kind not in "biuf":
            raise TypeError(f"warmup: dtypes must be real numeric dtypes, got {d}")
    dispatchers = kernels() if report else {}
    total = len(chosen) * len(STEPS)
    start = time.perf_counter()
    done = 0
    for dtype in chosen:
        for label, step in STEPS:
            before = _counts(dispatchers)
            t0 = time.perf_counter()
            step(nc, dtype.type)
            seconds = time.perf_counter() - t0
            done += 1
            if report:
                after = _counts(dispatchers)
                loaded = [n for n in dispatchers if after[n][0] > before[n][0]]
                compiled = [n for n in dispatchers if after[n][1] > before[n][1]]
                detail = "; ".join(part for part in (
                    "compiled " + ", ".join(compiled) if compiled else "",
                    "loaded " + ", ".join(loaded) if loaded else "") if part)
                report(f"[{done}/{total}] {dtype.name} {label}: {seconds:.2f} s"
                       + (f" ({detail})" if detail else " (already in memory)"))
    return time.perf_counter() - start


@public("numbaconv")
def warmup(dtypes: Iterable[DTypeLike] = (np.float32, np.float64)) -> float:
    """Compile (or load from the on-disk cache) every kernel for ``dtypes``.

    Nothing is compiled at import time, and the first call of each op and
    dtype compiles its kernels (seconds: see the README's notes for users).
    Call this once at start-up when the first real call must not pay that;
    ``python -m numbaconv warmup`` does the same from a shell (install
    scripts, Docker images, CI).

    Parameters
    ----------
    dtypes : iterable of dtypes, default (float32, float64)
        The compute dtypes to compile for.

    Returns
    -------
    seconds : float
        The wall-clock time it took (small when every kernel was cached).

    Raises
    ------
    TypeError
        If a dtype is complex, object or string.

    Notes
    -----
    Every public op runs once on tiny inputs in each data format, with
    shapes that reach both convolution strategies (planes and patch GEMM)
    for the forward pass and both gradients. TensorFlow and PyTorch have
    no equivalent: their kernels are compiled ahead of time.

    Examples
    --------
    >>> import numpy as np
    >>> import numbaconv as nc
    >>> seconds = nc.warmup([np.float64])
    >>> seconds > 0
    True
    """
    return run(dtypes)
