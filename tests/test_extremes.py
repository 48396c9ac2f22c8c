"""The far end of legal geometry, integers beyond int64, and LRN in float32 overflow.

Geometry: strides, paddings and dilations of 2**k (k up to 63, and beyond for
refusal), alone and combined, for every op family in both layouts. Each
family runs in a subprocess (``extremes_worker.py``) with a time limit per
case, so a hang or a crash fails its case instead of the session. A case
passes when numbaconv gives the reference's answer (the naive loops', where
the reference cannot allocate its padded plane) or refuses with a
ValueError/MemoryError naming an argument.
"""
import json
import os
import re
import selectors
import subprocess
import sys
import time

import numpy as np
import pytest

import extremes_worker
import naive
import numbaconv
import numbaconv.reference
from numbaconv import _validate
from numbaconv.compat import cs231n

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "extremes_worker.py")
FORMATS = ("NHWC", "NCHW")

# ------------------------------------------------------------ case grid

EXPONENTS = (1, 2, 3, 8, 16, 31, 32, 33, 40, 62, 63, 64, 100)
SPECIAL = (2 ** 63 - 1, 2 ** 62 - 1)  # the largest int64, and just below the index limit
VALUES = tuple(2 ** k for k in EXPONENTS) + SPECIAL
# Legal cases with more output cells than this are left out: they test nothing
# about extremes (just a large computation) and would keep the naive oracle busy.
MAX_CELLS = 20_000

def _geometry_args(v):
    """The combinations of stride, padding and dilation tried at value v."""
    yield {"stride": v}
    yield {"stride": (v, 1)}
    yield {"padding": v}
    yield {"padding": ((0, v), (v, 0))}
    yield {"dilation": v}
    yield {"dilation": (1, v), "padding": "SAME"}
    yield {"dilation": v, "padding": "SAME"}
    yield {"stride": v, "padding": v}
    yield {"stride": v, "padding": "SAME"}
    yield {"stride": v, "dilation": v}
    yield {"padding": v, "dilation": v}
    yield {"stride": v, "padding": v, "dilation": v}


def _output_cells(family, case):
    """Output cells of a case, or None if validation refuses it."""
    try:
        return extremes_worker.output_cells(family, case)
    except ValueError:
        return None


def _jsonable(value):
    return [_jsonable(v) for v in value] if isinstance(value, (tuple, list)) else value


def family_cases(family):
    if family == "pool":
        raw = []
        for v in VALUES:
            raw += [{"pool_size": (2, 3), "args": {"stride": v}},
                    {"pool_size": (2, 3), "args": {"stride": (1, v)}},
                    {"pool_size": (2, 3), "args": {"padding": v}},
                    {"pool_size": v, "args": {}},
                    {"pool_size": v, "args": {"padding": v - 1}},
                    {"pool_size": (v, 2), "args": {"padding": (v - 1, 1), "stride": v}},
                    {"pool_size": v, "args": {"padding": v - 1, "stride": (v, 1)}}]
    else:
        data = ("t23", "t1") if family == "transpose" else ("k23", "k11", "k23w")
        raw = [{"data": d, "args": args} for v in VALUES for d in data for args in _geometry_args(v)]
    cases = []
    for i, case in enumerate(raw):
        cells = _output_cells(family, case)
        if cells is None or cells <= MAX_CELLS:
            case = {key: _jsonable(value) if key != "args" else {k: _jsonable(a) for k, a in value.items()}
                    for key, value in case.items()}
            order = (cells is not None, _largest_int(case))
            cases.append((order, dict(case, id=f"{i}:{json.dumps({k: v for k, v in case.items()})}")))
    # Refusals first (validation only), then smaller geometry first: should a run of
    # hanging cases exhaust the time budget, it cuts the most extreme ones.
    return [case for _, case in sorted(cases, key=lambda item: item[0])]


def _largest_int(value):
    if isinstance(value, dict):
        return max((_largest_int(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return max((_largest_int(v) for v in value), default=0)
    return value if isinstance(value, int) else 0


# ------------------------------------------------------------ subprocess driver

WARMUP_LIMIT = 900  # s: the first call of each kernel may compile (cold cache, loaded machine)
CASE_LIMIT = 15  # s per case: every case is a few small arrays (the naive oracle takes ~1 s)
# s per family and layout, restarts included: a hang costs CASE_LIMIT plus a restart, so a
# run of failing cases is cut short (the rest reported as not run) to keep CI bounded.
FAMILY_BUDGET = 240


def run_in_subprocess(family, fmt, cases):
    """{case id: outcome}; a case that hangs or crashes its process gets that as its outcome."""
    results, todo = {}, list(cases)
    deadline = time.monotonic() + FAMILY_BUDGET
    while todo:
        if time.monotonic() > deadline:
            for case in todo:
                results[case["id"]] = f"not run: the {FAMILY_BUDGET} s budget went to earlier hangs/crashes"
            break
        proc = subprocess.Popen([sys.executable, WORKER, family, fmt], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        proc.stdin.write(json.dumps(todo))
        proc.stdin.close()
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        current, limit, failure = "warm-up", WARMUP_LIMIT, None
        while failure is None:
            if not selector.select(timeout=limit):
                proc.kill()
                failure = f"no answer within {limit} s (hang)"
                break
            line = proc.stdout.readline()
            if not line:
                failure = f"the process died (exit code {proc.wait()})"
                break
            kind, _, payload = line.rstrip("\n").partition(" ")
            if kind == "READY":
                current, limit = None, CASE_LIMIT
            elif kind == "START":
                current = payload
            elif kind == "DONE":
                case_id, outcome = json.loads(payload)
                results[case_id] = outcome
                current = None
        proc.wait()
        selector.close()
        proc.stdout.close()
        if current == "warm-up":
            raise AssertionError(f"the {family} worker failed its warm-up: {failure}")
        if current is not None:
            results[current] = failure
        elif len(results) < len(cases) and failure is not None and "died" in failure:
            raise AssertionError(f"the {family} worker died between cases: {failure}")
        todo = [c for c in todo if c["id"] not in results]
    return results


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("family", ["conv", "transpose", "patches", "pool"])
def test_extreme_geometry(family, fmt):
    cases = family_cases(family)
    assert len(cases) > 50
    results = run_in_subprocess(family, fmt, cases)
    assert set(results) == {c["id"] for c in cases}
    failed = {case_id: outcome for case_id, outcome in results.items()
              if outcome not in ("ok", "refused")}
    outcomes = [o for o in results.values() if o in ("ok", "refused")]
    assert "ok" in outcomes and "refused" in outcomes  # the grid reaches both ends
    assert not failed, f"{len(failed)} of {len(cases)} {family} cases failed ({fmt}):\n" + "\n".join(
        f"  {case_id} -> {outcome}" for case_id, outcome in sorted(failed.items()))


# ------------------------------------------------------------ memory

MEMORY_SCRIPT = r"""
import resource, sys
import numpy as np
sys.path.insert(0, {root!r})
import numbaconv as nc
x, w = np.ones((2, 8, 8, 3)), np.ones((3, 3, 3, 4))
nc.conv2d(x, w, stride=1, padding=1)  # compile (or load) the kernels
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
nc.conv2d(x, w, stride=1, padding=1)
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
y = nc.conv2d(x, w, stride=4096, padding=1)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, baseline, after, y.shape)
"""


def test_huge_stride_costs_no_memory():
    """Peak RSS (KiB on Linux) of a stride-4096 conv stays within a few MB of a stride-1 call.

    tracemalloc does not see Numba's allocations, so this measures the
    process's high-water mark in a fresh subprocess.
    """
    root = os.path.dirname(HERE)
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT.format(root=root)],
                         capture_output=True, text=True, timeout=WARMUP_LIMIT, check=True).stdout
    before, baseline, after, *shape = out.strip().split(maxsplit=3)
    assert shape == ["(2, 1, 1, 4)"]
    assert int(after) - int(baseline) < 4 * 1024, (before, baseline, after)


# ------------------------------------------------------------ integers beyond int64

HUGE = [2 ** 64, 10 ** 30, np.uint64(2 ** 64 - 1), 2 ** 63]
X, W = np.ones((1, 4, 4, 2)), np.ones((2, 2, 2, 3))
INT_CALLS = {  # name -> (call taking (impl, value), the argument the error must name)
    "stride": (lambda m, v: m.conv2d(X, W, stride=v), "stride"),
    "stride_pair": (lambda m, v: m.conv2d(X, W, stride=(1, v)), "stride[1]"),
    "padding": (lambda m, v: m.conv2d(X, W, padding=v), "padding"),
    "padding_sides": (lambda m, v: m.conv2d(X, W, padding=((0, v), (0, 0))), "padding[0][1]"),
    "dilation": (lambda m, v: m.conv2d_backward(np.ones((1, 3, 3, 3)), X, W, dilation=v), "dilation"),
    "transpose_stride": (lambda m, v: m.conv2d_transpose(np.ones((1, 2, 2, 3)), W, stride=v), "stride"),
    "output_padding": (lambda m, v: m.conv2d_transpose(np.ones((1, 2, 2, 3)), W, output_padding=v),
                       "output_padding"),
    "kernel_size": (lambda m, v: m.im2col(X, v), "kernel_size"),
    "col2im_x_shape": (lambda m, v: m.col2im(np.ones((9, 8)), (1, v, 4, 2), 2), "x_shape[1]"),
    "pool_stride": (lambda m, v: m.max_pool2d(X, 2, stride=v), "stride"),
    "pool_size": (lambda m, v: m.max_pool2d_argmax(X, v), "pool_size"),
    "pool_x_shape": (lambda m, v: m.max_pool2d_backward(np.ones((1, 2, 2, 2)), np.zeros((1, 2, 2, 2), int),
                                                        (1, 4, v, 2)), "x_shape[2]"),
}


@pytest.mark.parametrize("value", HUGE, ids=["2**64", "10**30", "uint64_max", "2**63"])
@pytest.mark.parametrize("call", list(INT_CALLS))
def test_integers_beyond_int64_are_refused_by_name(impl, call, value):
    run, name = INT_CALLS[call]
    with pytest.raises(ValueError, match=re.escape(name) + "=.*int64"):
        run(impl, value)


@pytest.mark.parametrize("module", ["fast", "naive"])
def test_cs231n_refuses_integers_beyond_int64(module):
    x, w = np.ones((1, 2, 4, 4)), np.ones((3, 2, 2, 2))
    conv = cs231n.conv_forward_fast if module == "fast" else cs231n.conv_forward_naive
    pool = cs231n.max_pool_forward_fast if module == "fast" else cs231n.max_pool_forward_naive
    for value in HUGE:
        with pytest.raises(ValueError, match="stride=.*int64"):
            conv(x, w, np.zeros(3), {"stride": value, "pad": 0})
        with pytest.raises(ValueError, match="padding=.*int64"):
            conv(x, w, np.zeros(3), {"stride": 1, "pad": value})
        with pytest.raises(ValueError, match="stride=.*int64"):
            pool(x, {"pool_height": 2, "pool_width": 2, "stride": value})
    # The largest int64 stride is legal: one output position, the reference's answer.
    out, _ = conv(x, w, np.zeros(3), {"stride": 2 ** 63 - 1, "pad": 0})
    assert out.shape == (1, 3, 1, 1) and np.all(out == 8)


def test_results_larger_than_memory_are_refused_by_name(impl):
    with pytest.raises(ValueError, match=r"padding=.*makes an output .* elements"):
        impl.conv2d(X, W, padding=2 ** 40)
    with pytest.raises(ValueError, match=r"stride=.*makes an output"):
        impl.conv2d_transpose(np.ones((1, 3, 3, 3)), W, stride=2 ** 40)
    with pytest.raises(ValueError, match=r"x_shape=.*makes an output"):
        impl.max_pool2d_backward(np.ones((1, 1, 1, 2)), np.zeros((1, 1, 1, 2), int), (1, 2 ** 31, 2 ** 31, 2))
    with pytest.raises(ValueError, match=r"padded plane .* 2\*\*62"):
        impl.conv2d(X, W, stride=2 ** 62, padding=2 ** 62)


def test_normalized_geometry_gives_the_reference_answer_of_the_callers_geometry():
    """The kernels' stride/dilation differ from the caller's only where they cannot matter."""
    g = _validate.conv2d(X, W, None, 2 ** 40, 1, 1, "NHWC").g
    assert (g.oh, g.ow, g.sh, g.sw, g.stride) == (1, 1, 1, 1, (2 ** 40, 2 ** 40))
    g = _validate.im2col(X, (1, 3), 1, 0, (2 ** 50, 1), "NHWC").g
    assert (g.dh, g.dw, g.dilation) == (1, 1, (2 ** 50, 1))
    g = _validate.conv2d(X, W, None, 3, 0, 1, "NHWC").g
    assert (g.oh, g.sh) == (1, 1)
    # The reference computes with the caller's values: same answer either way.
    x = np.random.default_rng(3).normal(size=(2, 5, 6, 2))
    w = np.random.default_rng(4).normal(size=(1, 3, 2, 3))
    for stride, dilation, padding in [(7, 1, 1), ((5, 2), (9, 1), 0), (2 ** 62, (2 ** 62, 1), 1)]:
        want = naive.conv2d(x, w, None, stride, padding, dilation)
        for impl in (numbaconv, numbaconv.reference):
            got = impl.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------ LRN overflow


def lrn_float64(x, dy, **kw):
    """(y, dx, size of dx's two terms) from the naive loops in float64."""
    y = naive.lrn(x, **kw)
    dx = naive.lrn_backward(dy, x, **kw)
    r, bias, alpha, beta = kw["depth_radius"], kw["bias"], kw["alpha"], kw["beta"]
    xw, dyw = np.asarray(x, np.float64), np.asarray(dy, np.float64)
    with np.errstate(all="ignore"):
        s = bias + alpha * numbaconv.reference._normalization.window_sum(xw * xw, r)
        terms = (np.abs(dyw) * s ** -beta + 2 * abs(alpha * beta) * np.abs(xw)
                 * numbaconv.reference._normalization.window_sum(np.abs(dyw * xw) * s ** (-beta - 1), r))
    return y, dx, terms


def assert_lrn_close(got, want, dtype, scale):
    """Same NaN and inf pattern; finite entries within dtype rounding of the float64 answer."""
    want = want.astype(dtype) if dtype == np.float32 else want
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_array_equal(got[np.isinf(got)], want[np.isinf(want)])
    finite = np.isfinite(want)
    rtol = 3e-6 if dtype == np.float32 else 1e-12
    tol = rtol * (np.abs(want) if scale is None else np.where(np.isfinite(scale), scale, 0))
    tiny = np.finfo(dtype).tiny
    assert np.all(np.abs(got[finite] - want[finite]) <= tol[finite] + tiny), (got, want)


def lrn_overflow_cases():
    """(name, x in NHWC, dy, kw): the issue's cases and random blocks around float32's limits."""
    base = dict(depth_radius=1, bias=1.0, alpha=1.0, beta=0.5)
    three = np.ones((1, 1, 1, 3))
    big = three.copy()
    big[..., 0] = 3e19
    inf = three.copy()
    inf[..., 0] = np.inf
    rng = np.random.default_rng(5)
    # Many blocks, only some of which overflow float32: 40 channels, 2 x 300 pixels.
    mixed = rng.normal(size=(2, 20, 15, 40))
    mixed[0, 3:5, :, 7] *= 1e20
    mixed[1, 17, 2, :] *= 1e25
    yield "x=3e19", big, base
    yield "x=inf", inf, base
    yield "bias=1e39", three, dict(base, bias=1e39)
    yield "alpha=1e39", three, dict(base, alpha=1e39)
    yield "alpha=1e39 beta=0.75", three * 2, dict(base, alpha=1e39, beta=0.75)
    yield "bias=1e-30 tiny x", three * 1e-22, dict(base, bias=1e-30, beta=0.75)
    yield "bias=0 tiny x", three * 1e-25, dict(base, bias=0.0)
    yield "mixed blocks", mixed, dict(base, depth_radius=2, beta=0.75)
    yield "mixed blocks beta=1.3", mixed, dict(base, depth_radius=5, beta=1.3, alpha=1e-4)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name, x, kw", list(lrn_overflow_cases()), ids=[c[0] for c in lrn_overflow_cases()])
def test_lrn_overflow_matches_float64_math(name, x, kw, dtype, fmt):
    x = x.astype(dtype)
    dy = np.random.default_rng(6).normal(size=x.shape).astype(dtype)
    with np.errstate(all="ignore"):  # the naive loops meet inf / inf as the math does
        y_want, dx_want, terms = lrn_float64(x, dy, **kw)

    def layout(a):
        return a if fmt == "NHWC" else np.ascontiguousarray(a.transpose(0, 3, 1, 2))

    def back(a):
        return a if fmt == "NHWC" else a.transpose(0, 2, 3, 1)

    for impl in (numbaconv, numbaconv.reference):
        y = back(impl.lrn(layout(x), data_format=fmt, **kw))
        dx = back(impl.lrn_backward(layout(dy), layout(x), data_format=fmt, **kw))
        assert y.dtype == dx.dtype == dtype
        assert_lrn_close(y, y_want, dtype, None)
        assert_lrn_close(dx, dx_want, dtype, terms)
    if name == "x=3e19" and dtype == np.float32:
        # The row: no NaN, and the float64 answer (not the 0 of float32 overflow).
        np.testing.assert_allclose(y.ravel(), [1.0, 1 / 3e19, 3 ** -0.5], rtol=1e-6)
