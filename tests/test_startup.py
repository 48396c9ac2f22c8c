"""Start-up: ``python -m numbaconv warmup`` leaves nothing to compile, and ``info`` describes the cache.

One empty Numba cache directory for the module: a cold ``warmup`` fills it
(float32, the slow part, tens of seconds), then fresh processes run every
public op in both layouts and count the compilations through the kernels'
dispatcher stats (a compile from Numba's cache is a hit, anything else a
miss).
"""
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import pytest

import numbaconv
from numbaconv import _warmup

ROOT = Path(__file__).resolve().parents[1]

# Every public op in both layouts, on shapes other than warmup's own (odd
# sizes, stride 2, SAME), wide and narrow conv layers so that both
# strategies run, and two dtypes' worth of inputs that compute in float32.
EVERY_OP = """
import json, numpy as np, numbaconv as nc
from numbaconv import _warmup
rng = np.random.default_rng(0)
called = set()

def call(name, *args, **kwargs):
    called.add(name)
    return getattr(nc, name)(*args, **kwargs)

def nchw(a):
    return a.transpose(0, 3, 1, 2)

for layout in ("NHWC", "NCHW"):
    for dtype in (np.float32, np.int16):
        # planes, then patch GEMM (dW by taps into 32, by the patch GEMM into 48)
        for c_in, c_out in ((3, 5), (32, 32), (32, 48)):
            x = rng.standard_normal((2, 7, 6, c_in)).astype(dtype)
            w = rng.standard_normal((3, 3, c_in, c_out)).astype(dtype)
            b = np.ones(c_out, dtype)
            if layout == "NCHW":
                x, w = nchw(x), w.transpose(3, 2, 0, 1)
            for stride, padding in ((1, 1), (2, "SAME")):
                kw = dict(stride=stride, padding=padding, data_format=layout)
                y = call("conv2d", x, w, b, **kw)
                call("conv2d_backward", y, x, w, **kw)
                call("conv2d_backward_input", y, w, x.shape, **kw)
                call("conv2d_backward_filter", y, x, w.shape, **kw)
                if padding != "SAME":
                    t = call("conv2d_transpose", y, w, None, **kw)
                    call("conv2d_transpose_backward", t, y, w, **kw)
            wd = rng.standard_normal((3, 3, 1, c_in) if layout == "NHWC" else (c_in, 1, 3, 3)).astype(dtype)
            yd = call("conv2d", x, wd, None, padding=1, groups=c_in, data_format=layout)
            call("conv2d_backward", yd, x, wd, padding=1, groups=c_in, data_format=layout)
        x = rng.standard_normal((2, 7, 6, 4)).astype(dtype)
        if layout == "NCHW":
            x = nchw(x)
        cols = call("im2col", x, (3, 2), stride=2, padding=1, data_format=layout)
        call("col2im", cols, x.shape, (3, 2), stride=2, padding=1, data_format=layout)
        call("max_pool2d", x, 3, stride=2, padding=1, data_format=layout)
        pooled, argmax = call("max_pool2d_argmax", x, 3, stride=2, padding=1, data_format=layout)
        call("max_pool2d_backward", pooled, argmax, x.shape, data_format=layout)
        call("max_unpool2d", pooled, argmax, x.shape, data_format=layout)
        call("avg_pool2d", x, 3, stride=2, padding=1, data_format=layout)
        call("avg_pool2d_backward", pooled, x.shape, 3, stride=2, padding=1, data_format=layout)
        call("adaptive_avg_pool2d", x, (2, 3), data_format=layout)
        call("adaptive_avg_pool2d_backward", x[:, :2, :3] if layout == "NHWC" else x[:, :, :2, :3],
             x.shape, data_format=layout)
        call("lrn", x, depth_radius=2, beta=0.75, data_format=layout)
        call("lrn_backward", x, x, depth_radius=2, beta=0.75, data_format=layout)

stats = {name: [sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values())]
         for name, d in _warmup.kernels().items()}
print(json.dumps({"called": sorted(called), "stats": stats}))
"""


def run(args, cache, **kwargs):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "NUMBA_DISABLE_JIT": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                            timeout=1200, cwd=ROOT, **kwargs)
    assert result.returncode == 0, result.stderr
    return result.stdout


def info(cache):
    """``python -m numbaconv info`` as ({key: value}, {kernel: [dtypes]})."""
    fields, kernels = {}, {}
    for line in run(["-m", "numbaconv", "info"], cache).splitlines():
        if line.startswith("  "):
            name, dtypes = line.split()[0], line.split(None, 1)[1]
            kernels[name] = [] if dtypes.strip() == "-" else dtypes.split(", ")
        else:
            key, value = line.split(": ", 1)
            fields[key] = value
    return fields, kernels


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    """A fresh cache directory, before and after ``python -m numbaconv warmup --dtypes float32``."""
    cache = tmp_path_factory.mktemp("numba-cache")
    before = info(cache)
    out = run(["-m", "numbaconv", "warmup", "--dtypes", "float32"], cache)
    return cache, before, out


def test_warmup_leaves_nothing_to_compile_for_any_op_or_layout(warm_cache):
    cache, _, out = warm_cache
    assert "compiled" in out and "done in" in out
    assert len(re.findall(r"^\[\d+/\d+\] float32 ", out, re.M)) == len(_warmup.STEPS)
    report = json.loads(run(["-c", textwrap.dedent(EVERY_OP)], cache).splitlines()[-1])
    public_ops = set(numbaconv.__all__) - {"warmup", "reference"}
    assert set(report["called"]) == public_ops  # a new op must join this test (and warmup)
    misses = {name: hm[1] for name, hm in report["stats"].items() if hm[1]}
    assert misses == {}, f"compiled after warmup: {misses}"
    loaded = {name for name, hm in report["stats"].items() if hm[0]}
    # The parallel kernels of both conv strategies, both layouts' pool and LRN kernels.
    assert {"convolution.conv2d_nhwc", "convolution.conv2d_backward_filter_nhwc",
            "patch_gemm.conv2d_patch_gemm", "patch_gemm.conv2d_backward_filter_patch_gemm",
            "patch_gemm.pack_filters", "filter_taps.conv2d_backward_filter_taps", "pooling.scatter_at_argmax",
            "normalization.local_response_norm", "patches.col2im_nhwc"} <= loaded


def test_warmup_reports_each_compiled_kernel(warm_cache):
    _, _, out = warm_cache
    step = next(line for line in out.splitlines() if "(patch GEMM)" in line and "backward" in line)
    assert "patch_gemm.conv2d_backward_filter_patch_gemm" in step
    # A second run compiles nothing: it loads what it needs, or finds it in memory.
    again = run(["-m", "numbaconv", "warmup", "--dtypes", "float32"], warm_cache[0])
    assert "compiled " not in again and "loaded " in again


def test_info_describes_versions_threads_and_the_cache(warm_cache):
    cache, (fields_before, kernels_before), _ = warm_cache
    fields, kernels = info(cache)
    assert fields["numbaconv"].startswith(numbaconv.__version__ + " ")
    assert fields["numba"] == numba.__version__
    assert int(fields["threads"]) >= 1
    assert fields["threading layer"] in ("tbb", "omp", "workqueue")
    assert fields["openmp wait"].startswith(("GOMP_SPINCOUNT=", "OMP_WAIT_POLICY="))
    assert float(fields["serial below"].split()[0]) > 0
    assert fields["NUMBA_CACHE_DIR"] == str(cache)
    assert Path(fields["cache directory"]).parent == cache
    assert fields["cache writable"] == "yes"
    n_kernels = len(_warmup.kernels())
    assert fields_before["kernels cached"] == f"0 of {n_kernels}"
    assert all(d == [] for d in kernels_before.values()) and len(kernels_before) == n_kernels
    cached = int(fields["kernels cached"].split(" of ")[0])
    assert cached == sum(bool(d) for d in kernels.values()) and cached > n_kernels // 2
    assert kernels["patch_gemm.conv2d_patch_gemm"] == ["float32"]
    assert kernels["pooling.scatter_at_argmax"] == ["float32"]


def test_warmup_rejects_non_numeric_dtypes():
    with pytest.raises(TypeError, match="dtypes"):
        numbaconv.warmup([complex])
    with pytest.raises(TypeError, match="dtypes"):
        numbaconv.warmup(["U3"])
