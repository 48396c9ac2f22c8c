"""Run extreme-geometry cases of one op family in a subprocess (driven by test_extremes.py).

Usage: ``python extremes_worker.py FAMILY DATA_FORMAT`` with a JSON list of
cases on stdin. Prints ``READY`` once the family's kernels are compiled, then
for each case ``START <id>`` before it and ``DONE <json [id, outcome]>``
after it, flushed, so the parent can tell which case hung or crashed the
process. The outcome is ``"ok"`` (the reference's answer, or where the
reference cannot allocate its padded plane, the naive loops' answer),
``"refused"`` (a ValueError/MemoryError naming an argument of the case), or
a description of what went wrong.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import naive
import numbaconv as fast
import numbaconv.reference as ref
from numbaconv import _validate

RNG = np.random.default_rng(7)
# The reference pads the whole plane and stacks every tap; past this many cells (either)
# the naive loops are the oracle.
MAX_REFERENCE_PADDED = 10 ** 6

DATA = {  # NHWC data, HWIO filters, float64
    "k23": (RNG.normal(size=(1, 5, 6, 2)), RNG.normal(size=(2, 3, 2, 3))),
    "k11": (RNG.normal(size=(2, 4, 3, 2)), RNG.normal(size=(1, 1, 2, 3))),
    # 16 channels: the filter gradient by taps (numbaconv._plan.dw_by_taps)
    "k23w": (RNG.normal(size=(1, 5, 6, 16)), RNG.normal(size=(2, 3, 16, 16))),
    # transposes: x has the forward conv's output channels (w's last axis)
    "t23": (RNG.normal(size=(1, 3, 4, 3)), RNG.normal(size=(2, 3, 2, 3))),
    "t1": (RNG.normal(size=(2, 1, 1, 3)), RNG.normal(size=(2, 3, 2, 3))),
}
# Pooling: tie-free values (a shuffled linspace).
POOL_X = RNG.permutation(np.linspace(-1, 1, 2 * 5 * 6 * 3)).reshape(2, 5, 6, 3)


def layout(a, fmt):
    return a if fmt == "NHWC" else np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def from_layout(a, fmt):
    return a if fmt == "NHWC" else a.transpose(0, 2, 3, 1)


def filters(w, fmt):
    return w if fmt == "NHWC" else np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def from_filters(w, fmt):
    return w if fmt == "NHWC" else w.transpose(2, 3, 1, 0)


def padded_cells(g, channels):
    return (g.h + g.pt + g.pb) * (g.w + g.pl + g.pr) * channels


# Each family: (geometry(case) -> Geometry, raising ValueError as the public call would,
# run(impl, case, g, fmt) -> results in NHWC/HWIO, naive(case, g) -> the same from the loops).


def geometry_args(case, **defaults):
    """The case's arguments over the public defaults (the validation layer takes them all)."""
    return dict(defaults, **case["args"])


def conv_geometry(case):
    x, w = DATA[case["data"]]
    return _validate.conv2d(x, w, None, fmt="NHWC", **geometry_args(case, stride=1, padding=0, dilation=1)).g


def conv_run(impl, case, g, fmt):
    x, w = DATA[case["data"]]
    b = np.arange(w.shape[3], dtype=np.float64)
    y = impl.conv2d(layout(x, fmt), filters(w, fmt), b, data_format=fmt, **case["args"])
    dy = np.random.default_rng(1).normal(size=(x.shape[0], g.oh, g.ow, w.shape[3]))
    dx, dw, db = impl.conv2d_backward(layout(dy, fmt), layout(x, fmt), filters(w, fmt),
                                      data_format=fmt, **case["args"])
    return from_layout(y, fmt), from_layout(dx, fmt), from_filters(dw, fmt), db


def conv_naive(case, g):
    x, w = DATA[case["data"]]
    b = np.arange(w.shape[3], dtype=np.float64)
    dy = np.random.default_rng(1).normal(size=(x.shape[0], g.oh, g.ow, w.shape[3]))
    return (naive.conv2d(x, w, b, **case["args"]), *naive.conv2d_backward(dy, x, w, **case["args"]))


def transpose_geometry(case):
    x, w = DATA[case["data"]]
    return _validate.conv2d_transpose(x, w, None, fmt="NHWC", output_padding=0,
                                      **geometry_args(case, stride=1, padding=0, dilation=1)).g


def transpose_run(impl, case, g, fmt):
    x, w = DATA[case["data"]]
    b = np.arange(w.shape[2], dtype=np.float64)
    y = impl.conv2d_transpose(layout(x, fmt), filters(w, fmt), b, data_format=fmt, **case["args"])
    dy = np.random.default_rng(1).normal(size=(x.shape[0], g.h, g.w, w.shape[2]))
    dx, dw, db = impl.conv2d_transpose_backward(layout(dy, fmt), layout(x, fmt), filters(w, fmt),
                                                data_format=fmt, **case["args"])
    return from_layout(y, fmt), from_layout(dx, fmt), from_filters(dw, fmt), db


def transpose_naive(case, g):
    x, w = DATA[case["data"]]
    b = np.arange(w.shape[2], dtype=np.float64)
    dy = np.random.default_rng(1).normal(size=(x.shape[0], g.h, g.w, w.shape[2]))
    return (naive.conv2d_transpose(x, w, b, **case["args"]),
            *naive.conv2d_transpose_backward(dy, x, w, **case["args"]))


def patches_geometry(case):
    x, w = DATA[case["data"]]
    return _validate.im2col(x, w.shape[:2], fmt="NHWC",
                            **geometry_args(case, stride=1, padding=0, dilation=1)).g


def _cols(case, g):
    x, w = DATA[case["data"]]
    rows, width = x.shape[0] * g.oh * g.ow, w.shape[0] * w.shape[1] * x.shape[3]
    return np.random.default_rng(1).normal(size=(rows, width))


def patches_run(impl, case, g, fmt):
    x, w = DATA[case["data"]]
    cols = impl.im2col(layout(x, fmt), w.shape[:2], data_format=fmt, **case["args"])
    back = impl.col2im(_cols(case, g), layout(x, fmt).shape, w.shape[:2], data_format=fmt,
                       **case["args"])
    return cols, from_layout(back, fmt)


def patches_naive(case, g):
    x, w = DATA[case["data"]]
    return (naive.im2col(x, w.shape[:2], **case["args"]),
            naive.col2im(_cols(case, g), x.shape, w.shape[:2], **case["args"]))


def pool_geometry(case):
    return _validate.max_pool2d(POOL_X, case["pool_size"], fmt="NHWC", dilation=1, ceil_mode=False,
                                **geometry_args(case, stride=None, padding=0)).g


def pool_run(impl, case, g, fmt):
    x = layout(POOL_X, fmt)
    y, argmax = impl.max_pool2d_argmax(x, case["pool_size"], data_format=fmt, **case["args"])
    y_only = impl.max_pool2d(x, case["pool_size"], data_format=fmt, **case["args"])
    dy = layout(np.random.default_rng(1).normal(size=(2, g.oh, g.ow, 3)), fmt)
    dx = impl.max_pool2d_backward(dy, argmax, x.shape, data_format=fmt)
    return from_layout(y, fmt), from_layout(argmax, fmt), from_layout(y_only, fmt), from_layout(dx, fmt)


def pool_naive(case, g):
    """Windows clipped to the input (the naive loops would walk a 2**k window tap by tap)."""
    n, h, w, c = POOL_X.shape
    y = np.empty((n, g.oh, g.ow, c))
    argmax = np.empty((n, g.oh, g.ow, c), np.int64)
    (sh, sw) = g.stride
    for i in range(g.oh):
        r0, r1 = max(i * sh - g.pt, 0), min(i * sh - g.pt + g.kh, h)
        for j in range(g.ow):
            c0, c1 = max(j * sw - g.pl, 0), min(j * sw - g.pl + g.kw, w)
            window = POOL_X[:, r0:r1, c0:c1, :].reshape(n, -1, c)
            y[:, i, j] = window.max(axis=1)
            first = window.argmax(axis=1)
            argmax[:, i, j] = (r0 + first // (c1 - c0)) * w + c0 + first % (c1 - c0)
    dy = np.random.default_rng(1).normal(size=(2, g.oh, g.ow, 3))
    return y, argmax, y, naive.max_pool2d_backward(dy, argmax, POOL_X.shape)


FAMILIES = {
    "conv": (conv_geometry, conv_run, conv_naive),
    "transpose": (transpose_geometry, transpose_run, transpose_naive),
    "patches": (patches_geometry, patches_run, patches_naive),
    "pool": (pool_geometry, pool_run, pool_naive),
}
WARMUP = {
    "conv": {"id": "warmup", "data": "k23", "args": {"stride": 2, "padding": 1, "dilation": 1}},
    "transpose": {"id": "warmup", "data": "t23", "args": {"stride": 2, "padding": 1, "dilation": 1}},
    "patches": {"id": "warmup", "data": "k23", "args": {"stride": 2, "padding": 1, "dilation": 2}},
    "pool": {"id": "warmup", "pool_size": [2, 3], "args": {"stride": 2, "padding": 1}},
}


def output_cells(family, case):
    """Cells of the case's results (the forward output, and the patches or the transpose input)."""
    g = FAMILIES[family][0](case)
    if family == "pool":
        return POOL_X.shape[0] * g.oh * g.ow * POOL_X.shape[3]
    x, w = DATA[case["data"]]
    if family == "transpose":
        return x.shape[0] * g.h * g.w * w.shape[2] + x.size
    per_position = w.shape[3] if family == "conv" else w.shape[0] * w.shape[1] * x.shape[3]
    return x.shape[0] * g.oh * g.ow * per_position


def named(err, case):
    """Does the message name an argument of the case? (Validation calls pool_size the window.)"""
    names = list(case["args"]) + (["pool_size", "window"] if "pool_size" in case else [])
    return any(name in str(err) for name in names)


def outcome(family, case, fmt):
    geometry, run, naive_run = FAMILIES[family]
    try:
        g = geometry(case)
    except ValueError:
        g = None  # the public call below must refuse it too (each run calls it first)
    try:
        got = run(fast, case, g, fmt)
    except (ValueError, MemoryError) as err:
        if named(err, case):
            return "refused"
        return f"unnamed {type(err).__name__}: {str(err)[:200]}"
    except Exception as err:  # noqa: BLE001 - every other exception is the finding
        return f"{type(err).__name__}: {str(err)[:200]}"
    channels = 3 if family == "pool" else DATA[case["data"]][0].shape[3]
    # The reference stacks every window tap of every output: huge windows go to the loops too.
    taps = g.kh * g.kw * output_cells(family, case)
    if padded_cells(g, channels) <= MAX_REFERENCE_PADDED and taps <= MAX_REFERENCE_PADDED:
        want, oracle = run(ref, case, g, fmt), "reference"
    else:
        want, oracle = naive_run(case, g), "naive loops"
    for i, (a, b) in enumerate(zip(got, want)):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-9, atol=1e-9):
            detail = (f"shape {a.shape} vs {b.shape}" if a.shape != b.shape
                      else f"max error {np.abs(a - b).max():.3g}")
            return f"result {i} differs from the {oracle}: {detail}"
    return "ok"


def main():
    family, fmt = sys.argv[1], sys.argv[2]
    cases = json.load(sys.stdin)
    assert outcome(family, WARMUP[family], fmt) == "ok"
    print("READY", flush=True)
    for case in cases:
        print("START", case["id"], flush=True)
        print("DONE", json.dumps([case["id"], outcome(family, case, fmt)]), flush=True)


if __name__ == "__main__":
    main()
