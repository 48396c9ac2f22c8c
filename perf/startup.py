"""Start-up of numbaconv in this fresh process: ``import numbaconv``, then each public op's first call.

    python perf/startup.py --result out.json [--dtype float32]

Run by ``bench.py`` (its start-up section) and ``compare.py --startup``,
twice per measurement, each time in a new process: first with an empty
``NUMBA_CACHE_DIR`` (cold: every first call compiles its kernels), then with
the cache the first process filled (warm: first calls load them). The
caller sets ``NUMBA_CACHE_DIR`` and ``PYTHONPATH``.

The ops run in a fixed order on small inputs, so that each figure is the
compile (or load) time of what that op adds to the ones before it: NHWC
first, in the order of the README's API list, with the four convolution
strategies ("planes" on a narrow layer, "patch GEMM" on a wide one,
"Winograd" on a 3x3 layer of 24 channels and 512 output pixels, "dots"
on 256 channels into 2, forward and backward) and the filter gradient's "taps"
(on the wide layer into 32 channels), then
NCHW calls (the pool and LRN kernels serve both layouts: these load or
compile nothing new, and their figures show it).
"""
import argparse
import json
import os
import sys
import time

T0 = time.perf_counter()


def _ops(nc, np, dtype):
    """[(name, call)] in the order they are timed."""
    rng = np.random.default_rng(0)

    def a(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x, w, b = a(2, 8, 8, 3), a(3, 3, 3, 8), a(8)  # narrow: planes
    xw, ww = a(2, 8, 8, 32), a(3, 3, 32, 32)  # wide: patch GEMM (its filter gradient by taps)
    ww48 = a(3, 3, 32, 48)  # into 48: the filter gradient by the patch GEMM too
    xg, wg = a(2, 16, 16, 24), a(3, 3, 24, 24)  # 3x3, 512 outputs: Winograd
    xd, wd = a(2, 4, 4, 256), a(2, 2, 256, 2)  # into 2 channels on 3x3 planes, rows of 512: dots
    y, yw = nc.reference.conv2d(x, w, padding=1), nc.reference.conv2d(xw, ww, padding=1)
    yw48 = nc.reference.conv2d(xw, ww48, padding=1)
    yg = nc.reference.conv2d(xg, wg, padding=1)
    yd = nc.reference.conv2d(xd, wd)
    xp = a(2, 8, 8, 4)
    pooled, argmax = nc.reference.max_pool2d_argmax(xp, 2)
    cols = nc.reference.im2col(xp, 3, padding=1)
    xc = np.ascontiguousarray(xp.transpose(0, 3, 1, 2))
    pooled_c, argmax_c = nc.reference.max_pool2d_argmax(xc, 2, data_format="NCHW")
    avg, adaptive = nc.reference.avg_pool2d(xp, 2), nc.reference.adaptive_avg_pool2d(xp, 1)
    return [
        ("conv2d", lambda: nc.conv2d(x, w, b, padding=1)),
        ("conv2d_backward", lambda: nc.conv2d_backward(y, x, w, padding=1)),
        ("conv2d_transpose", lambda: nc.conv2d_transpose(y, w, None, padding=1)),
        ("conv2d_transpose_backward", lambda: nc.conv2d_transpose_backward(x, y, w, padding=1)),
        ("conv2d_wide", lambda: nc.conv2d(xw, ww, padding=1)),
        ("conv2d_backward_wide", lambda: nc.conv2d_backward(yw48, xw, ww48, padding=1)),
        ("conv2d_backward_filter_taps", lambda: nc.conv2d_backward_filter(yw, xw, ww.shape, padding=1)),
        ("conv2d_winograd", lambda: nc.conv2d(xg, wg, padding=1)),
        ("conv2d_backward_winograd", lambda: nc.conv2d_backward(yg, xg, wg, padding=1)),
        ("conv2d_dots", lambda: nc.conv2d(xd, wd)),
        ("conv2d_backward_dots", lambda: nc.conv2d_backward(yd, xd, wd)),
        ("conv2d_backward_input", lambda: nc.conv2d_backward_input(y, w, x.shape, padding=1)),
        ("conv2d_backward_filter", lambda: nc.conv2d_backward_filter(y, x, w.shape, padding=1)),
        ("im2col", lambda: nc.im2col(xp, 3, padding=1)),
        ("col2im", lambda: nc.col2im(cols, xp.shape, 3, padding=1)),
        ("max_pool2d", lambda: nc.max_pool2d(xp, 2)),
        ("max_pool2d_argmax", lambda: nc.max_pool2d_argmax(xp, 2)),
        ("max_pool2d_backward", lambda: nc.max_pool2d_backward(pooled, argmax, xp.shape)),
        ("max_unpool2d", lambda: nc.max_unpool2d(pooled, argmax, xp.shape)),
        ("avg_pool2d", lambda: nc.avg_pool2d(xp, 2)),
        ("avg_pool2d_backward", lambda: nc.avg_pool2d_backward(avg, xp.shape, 2)),
        ("adaptive_avg_pool2d", lambda: nc.adaptive_avg_pool2d(xp, 1)),
        ("adaptive_avg_pool2d_backward", lambda: nc.adaptive_avg_pool2d_backward(adaptive, xp.shape)),
        ("lrn", lambda: nc.lrn(xp, depth_radius=2)),
        ("lrn_backward", lambda: nc.lrn_backward(xp, xp, depth_radius=2)),
        ("max_pool2d_backward_nchw", lambda: nc.max_pool2d_backward(pooled_c, argmax_c, xc.shape,
                                                                     data_format="NCHW")),
        ("lrn_nchw", lambda: nc.lrn(xc, depth_radius=2, data_format="NCHW")),
        ("lrn_backward_nchw", lambda: nc.lrn_backward(xc, xc, depth_radius=2, data_format="NCHW")),
    ]


def measure(dtype_name):
    """Import numbaconv, call each op once; the report (wall and CPU ms per op)."""
    t0 = time.perf_counter()
    import numbaconv as nc

    import_s = time.perf_counter() - t0
    import numpy as np

    first_ms, first_cpu_ms = {}, {}
    for name, call in _ops(nc, np, getattr(np, dtype_name)):
        t, c = time.perf_counter(), time.process_time()
        call()
        first_ms[name] = 1e3 * (time.perf_counter() - t)
        # Compiling is one thread's work: CPU time barely moves when other jobs share the cores.
        first_cpu_ms[name] = 1e3 * (time.process_time() - c)
    return {"dtype": dtype_name, "import_s": import_s, "first_call_ms": first_ms,
            "first_call_cpu_ms": first_cpu_ms,
            "total_s": import_s + sum(first_ms.values()) / 1e3,
            "process_s": time.perf_counter() - T0,
            "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR"),
            "module_file": nc.__file__, "loadavg": os.getloadavg()}


def main(argv=None):
    """Measure and write the report to ``--result``."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--result", required=True)
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    args = p.parse_args(argv)
    report = measure(args.dtype)
    with open(args.result, "w") as f:
        json.dump(report, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
