"""NCHW against NHWC callers: numbaconv's time per layout over the sweep's conv layers.

    python perf/layouts.py [--match sw-resnet] [--rounds 7]

Issue 8 wants NCHW callers (PyTorch's and cs231n's layout, OIHW filters)
within 10% of NHWC ones. For each case of ``cases.SWEEP`` this times, in one
process, the public ``conv2d`` (forward) and ``conv2d_backward`` (dx, dw, db)
in both layouts on the same values, the four calls interleaved round by
round (so that drift in the machine's load hits all alike), and prints the
median of ``--rounds`` calls of each and the ratios NCHW / NHWC, then the
median and worst ratio per pass. Wall time, with Numba's threads as the
process has them (``NUMBA_NUM_THREADS``); float32.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cases as C  # noqa: E402


def nchw(a):
    """An NHWC array's values in C-contiguous NCHW memory."""
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def time_case(nc, case, rounds, rng):
    """{(pass, layout): median ms} for one sweep case."""
    x = rng.standard_normal(case.x_shape).astype(np.float32)
    w = rng.standard_normal(case.w_shape).astype(np.float32)
    b = rng.standard_normal(case.w_shape[3]).astype(np.float32)
    kw = dict(stride=case.stride, padding=case.pad)
    dy = rng.standard_normal(nc.conv2d(x, w, b, **kw).shape).astype(np.float32)
    xc, dyc, wc = nchw(x), nchw(dy), np.ascontiguousarray(w.transpose(3, 2, 0, 1))
    calls = {
        ("fwd", "NHWC"): lambda: nc.conv2d(x, w, b, **kw),
        ("fwd", "NCHW"): lambda: nc.conv2d(xc, wc, b, data_format="NCHW", **kw),
        ("bwd", "NHWC"): lambda: nc.conv2d_backward(dy, x, w, **kw),
        ("bwd", "NCHW"): lambda: nc.conv2d_backward(dyc, xc, wc, data_format="NCHW", **kw),
    }
    for call in calls.values():
        call()  # compile or load, and first-touch the allocations
    times = {key: [] for key in calls}
    order = list(calls.items())
    for r in range(rounds):
        for key, call in (order if r % 2 == 0 else order[::-1]):
            t0 = time.perf_counter()
            call()
            times[key].append(time.perf_counter() - t0)
    return {key: statistics.median(t) * 1e3 for key, t in times.items()}


def main():
    """Time every chosen case in both layouts and print the table and the summary."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--match", default="sw-", help="the sweep cases whose name starts with this")
    p.add_argument("--rounds", type=int, default=7, help="calls of each op and layout per case")
    args = p.parse_args()
    import numbaconv as nc
    chosen = [c for c in C.SWEEP if c.name.startswith(args.match)]
    if not chosen:
        raise SystemExit(f"no sweep case starts with {args.match!r}")
    rng = np.random.default_rng(C.SEED)
    ratios = {"fwd": [], "bwd": []}
    print(f"{'case':42s} {'fwd NHWC':>9s} {'NCHW':>8s} {'ratio':>6s}   {'bwd NHWC':>9s} {'NCHW':>8s} {'ratio':>6s}")
    for case in chosen:
        m = time_case(nc, case, args.rounds, rng)
        cells = []
        for pass_ in ("fwd", "bwd"):
            ratio = m[pass_, "NCHW"] / m[pass_, "NHWC"]
            ratios[pass_].append((ratio, case.name))
            cells.append(f"{m[pass_, 'NHWC']:9.3f} {m[pass_, 'NCHW']:8.3f} {ratio:6.2f}")
        print(f"{case.name:42s} {'   '.join(cells)}", flush=True)
    for pass_, rs in ratios.items():
        within = sum(r <= 1.10 for r, _ in rs)
        worst = max(rs)
        print(f"{pass_}: {len(rs)} shapes, NCHW within 10% of NHWC on {within}; median ratio "
              f"{statistics.median(r for r, _ in rs):.2f}, worst {worst[0]:.2f} ({worst[1]})")


if __name__ == "__main__":
    main()
