"""Tests of the benchmark machinery (not of speed): run with ``pytest perf/test_perf.py``.

Outside the suite's ``testpaths`` on purpose: they guard the scripts in
perf/ (a wrong result is never timed, the verdict logic, the work counts,
the seed baseline's correctness), not the package.
"""
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

PERF = os.path.dirname(os.path.abspath(__file__))
# perf/'s modules import each other by plain name; tests/ has a cases.py too.
for _name in ("cases", "timing", "impls", "worker", "compare", "seed_baseline"):
    _mod = sys.modules.get(_name)
    if _mod is not None and os.path.dirname(getattr(_mod, "__file__", "") or "") != PERF:
        del sys.modules[_name]
sys.path.insert(0, PERF)

import cases as C  # noqa: E402
import compare  # noqa: E402
import impls  # noqa: E402
import seed_baseline  # noqa: E402
import timing  # noqa: E402
import worker  # noqa: E402

import numbaconv.reference as ref  # noqa: E402

SEED_FILE = "/work/shared/seeds/000_9b5af76a53c1a3b7.txt"


# ------------------------------------------------------------------ the seed baseline


@pytest.mark.parametrize("name", ["conv", "conv7x7", "conv8x16s5"])
def test_seed_code_computes_what_the_reference_computes(name):
    case = C.BY_NAME[name]
    rng = np.random.default_rng(1)
    xs = (2,) + case.x_shape[1:]
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(case.w_shape).astype(np.float32)
    b = rng.standard_normal(case.w_shape[3]).astype(np.float32)
    (p, _), _ = C.pads(case, xs)
    kw = dict(stride=case.stride, padding=case.padding)
    y = seed_baseline.conv_forward(x, w, b, p, case.stride)
    np.testing.assert_allclose(y, ref.conv2d(x, w, b, **kw), rtol=1e-4, atol=1e-4)
    dy = np.ones(y.shape)  # float64 ones, as the seed ran it
    for got, want in zip(seed_baseline.conv_backward(dy, x, w, b, p, case.stride),
                         ref.conv2d_backward(dy, x, w, **kw)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_seed_conv_backward_is_the_seed_text_verbatim():
    if not os.path.exists(SEED_FILE):
        pytest.skip(f"seed notebook not on this machine ({SEED_FILE})")

    def block(text):
        start = text.index("def conv_backward(")
        return text[start:text.index("return (dX, dW, db)", start)]

    with open(SEED_FILE) as f:
        seed = block(f.read())
    with open(os.path.join(PERF, "seed_baseline.py")) as f:
        assert block(f.read()) == seed


# ------------------------------------------------------------------ work counts


def test_conv_flops_of_the_seed_benchmark():
    case = C.BY_NAME["conv"]
    per_pass = 2 * 128 * 28 * 28 * 3 * 3 * 3 * 16
    assert C.work(case, "fwd", case.x_shape) == (per_pass, None)
    assert C.work(case, "bwd", case.x_shape) == (2 * per_pass, None)
    assert C.out_hw(C.BY_NAME["conv8x16s5"], (4, 28, 46, 128)) == (5, 7)  # the seed's dY
    assert C.pads(C.BY_NAME["conv7x7"]) == ((3, 3), (3, 3))  # the seed's P=3


def test_inputs_are_seeded_and_shaped(tmp_path):
    cases = C.select(["maxpool", "conv7x7"])
    C.save_inputs(tmp_path, cases, quick=True)
    first = {c.name: C.load_inputs(tmp_path, c) for c in cases}
    C.save_inputs(tmp_path, cases, quick=True)
    for c in cases:
        again = C.load_inputs(tmp_path, c)
        for k, v in first[c.name].items():
            assert v.dtype == np.float32
            np.testing.assert_array_equal(v, again[k])
    assert first["maxpool"]["dy"].shape == (16, 14, 14, 16)
    assert first["conv7x7"]["dy"].shape == (8, 11, 9, 32)


# ------------------------------------------------------------------ correctness gate


def test_check_flags_wrong_results():
    want = {"y": np.arange(12, dtype=np.float32).reshape(3, 4)}
    assert worker.check({"y": want["y"] + 1e-7}, want)[1]
    assert not worker.check({"y": want["y"][::-1]}, want)[1]
    assert not worker.check({"y": want["y"].T}, want)[1]  # wrong shape
    assert not worker.check({"y": np.full((3, 4), np.nan, np.float32)}, want)[1]
    idx = {"argmax": np.arange(6)}
    assert not worker.check({"argmax": np.arange(6)[::-1]}, idx)[1]


def test_a_wrong_kernel_is_not_timed(tmp_path, monkeypatch):
    C.save_inputs(tmp_path, C.select(["lrn"]), quick=True)
    out = str(tmp_path / "out")
    args = SimpleNamespace(startup_only=False, runs=3, min_time=0.0, warmup=0)
    good = worker.run_op(worker.Runner("reference", str(tmp_path), out), "lrn.fwd", args)
    assert "ok" not in good and good["runs"] == 3 and "median_ms" in good  # nothing to check against

    real_build = impls.build

    def broken(impl, module, case, pass_, data):  # the reference's op, 1% off
        op = real_build("reference", ref, case, pass_, data)
        return impls.Op(lambda: op.call() * 1.01, op.outputs)

    monkeypatch.setattr(impls, "build", broken)
    runner = worker.Runner("numbaconv", str(tmp_path), out, ["reference"])
    bad = worker.run_op(runner, "lrn.fwd", args)
    assert bad["ok"] is False
    assert "median_ms" not in bad and "runs" not in bad
    assert bad["check"]["reference"]["y"] > 1e-3
    with pytest.raises(RuntimeError, match="not timed"):
        runner.time("lrn.fwd", 3)


def test_worker_process_end_to_end(tmp_path):
    cases = C.select(["maxpool"])
    C.save_inputs(tmp_path, cases, quick=True)
    result = tmp_path / "r.json"
    subprocess.run([sys.executable, os.path.join(PERF, "worker.py"), "--impl", "reference",
                    "--inputs", str(tmp_path), "--cases", "maxpool", "--runs", "2",
                    "--outputs", str(tmp_path / "out"), "--result", str(result)],
                   check=True, cwd=PERF, capture_output=True)
    report = json.loads(result.read_text())
    assert [o["op"] for o in report["ops"]] == ["maxpool.fwd", "maxpool.bwd"]
    assert all(o["runs"] >= 2 and o["median_ms"] > 0 for o in report["ops"])
    assert (tmp_path / "out" / "reference" / "maxpool.fwd.npz").exists()


def test_worker_serve_protocol(tmp_path):
    C.save_inputs(tmp_path, C.select(["maxpool"]), quick=True)
    proc = subprocess.Popen([sys.executable, os.path.join(PERF, "worker.py"), "--impl", "reference",
                             "--inputs", str(tmp_path), "--outputs", str(tmp_path / "out"), "--serve"],
                            cwd=PERF, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    commands = [{"cmd": "first", "op": "maxpool.bwd"},
                {"cmd": "time", "op": "maxpool.bwd", "runs": 4, "warmup": 0},
                {"cmd": "time", "op": "conv.fwd", "runs": 1},  # never built: an error answer
                {"cmd": "quit"}]
    out, _ = proc.communicate("".join(json.dumps(c) + "\n" for c in commands), timeout=120)
    answers = [json.loads(line[len(worker.ANSWER):]) for line in out.splitlines()
               if line.startswith(worker.ANSWER)]
    assert answers[0]["ready"]
    assert answers[1]["rec"]["op"] == "maxpool.bwd"
    assert len(answers[2]["wall"]) == len(answers[2]["cpu"]) == 4
    assert "error" in answers[3]
    assert answers[4] == {"bye": True} and proc.returncode == 0


# ------------------------------------------------------------------ timing and verdicts


def test_time_calls_counts_and_min_time():
    wall, cpu = timing.time_calls(lambda: None, runs=5, warmup=0)
    assert len(wall) == len(cpu) == 5
    wall, _ = timing.time_calls(lambda: sum(range(1000)), runs=1, min_time=0.02, warmup=0)
    assert len(wall) > 1 and sum(wall) <= 0.5


def test_verdicts():
    rng = np.random.default_rng(0)
    ci = lambda r: compare.bootstrap_ci(r, 0.95, 2000, rng)  # noqa: E731
    same = 1 + 0.03 * rng.standard_normal(8)
    lo, hi = ci(same)
    assert compare.verdict(np.median(same), lo, hi, 0.10) == "same"
    slow = 1.8 + 0.05 * rng.standard_normal(8)
    lo, hi = ci(slow)
    assert compare.verdict(np.median(slow), lo, hi, 0.10) == "REGRESSION"
    noisy = np.array([0.9, 1.0, 1.15, 1.2, 1.25, 1.3, 1.6, 2.0])
    lo, hi = ci(noisy)
    assert lo <= 1.1 < np.median(noisy)
    assert compare.verdict(np.median(noisy), lo, hi, 0.10).startswith("slower?")
    fast = 0.5 + 0.02 * rng.standard_normal(8)
    lo, hi = ci(fast)
    assert compare.verdict(np.median(fast), lo, hi, 0.10) == "faster"


# ------------------------------------------------------------------ start-up


def test_startup_rows_are_judged_like_any_op():
    # compare.py --startup adds startup[-warm].* rows to each round; analyse
    # judges them after the cases' ops, so a slower compile is a REGRESSION.
    args = SimpleNamespace(case_list=C.select(["maxpool"]), threshold=0.10, confidence=0.95)
    fast = {"maxpool.fwd": 1.0, "startup.conv2d": 1000.0, "startup.all": 2000.0, "startup-warm.all": 50.0}
    slow = dict(fast, **{"startup.conv2d": 2000.0, "startup.all": 3000.0})
    a = SimpleNamespace(rounds=[dict(fast) for _ in range(6)])
    b = SimpleNamespace(rounds=[dict(slow) for _ in range(6)])
    rows = {r["op"]: r for r in compare.analyse(a, b, args)}
    assert list(rows) == ["maxpool.fwd", "startup.conv2d", "startup.all", "startup-warm.all"]
    assert rows["startup.conv2d"]["verdict"] == "REGRESSION"
    assert rows["startup.all"]["ratio"] == pytest.approx(1.5)
    assert rows["startup-warm.all"]["verdict"] == rows["maxpool.fwd"]["verdict"] == "same"


def test_startup_script_reports_every_public_op(tmp_path):
    # Two new processes on an empty cache of their own: the first compiles
    # every kernel, the second loads them.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=os.path.dirname(PERF))
    reports = []
    for run in ("cold", "warm"):
        result = tmp_path / f"{run}.json"
        subprocess.run([sys.executable, os.path.join(PERF, "startup.py"), "--result", str(result)],
                       env=env, cwd=PERF, check=True, timeout=1200)
        reports.append(json.loads(result.read_text()))
    cold, warm = reports
    import numbaconv

    suffixes = ("_wide", "_winograd", "_nchw", "_taps", "_dots")  # strategies and layouts of one op
    called = set()
    for op in cold["first_call_ms"]:
        for suffix in suffixes:
            op = op.removesuffix(suffix)
        called.add(op)
    assert called == set(numbaconv.__all__) - {"warmup", "reference"}
    assert set(cold["first_call_cpu_ms"]) == set(cold["first_call_ms"]) == set(warm["first_call_ms"])
    assert cold["total_s"] == pytest.approx(cold["import_s"] + sum(cold["first_call_ms"].values()) / 1e3)
    assert cold["total_s"] > 3 * warm["total_s"]


def test_bench_startup_table_lists_each_op():
    import bench

    st = {"dtype": "float32", "import_s_cold": 0.4, "import_s_warm": 0.3, "total_cold_s": 9.0,
          "total_warm_s": 0.9, "loadavg": [[2.0, 2.0, 2.0], [2.5, 2.0, 2.0]],
          "ops": {"conv2d": {"cold_ms": 5000.0, "cold_cpu_ms": 4900.0, "warm_ms": 400.0, "warm_cpu_ms": 390.0},
                  "lrn": {"cold_ms": 2000.0, "cold_cpu_ms": 1990.0, "warm_ms": None, "warm_cpu_ms": None}}}
    text = "\n".join(bench.startup_table(st))
    assert "conv2d" in text and "5000.0" in text and "import numbaconv" in text
    assert text.splitlines()[-2].split()[-2:] == ["9000.0", "900.0"]


def test_under_load_summary_takes_medians_over_rounds():
    import under_load

    medians = {"nc": {0: {"op": [1.0, 2.0, 4.0]}, 3: {"op": [3.0, 2.0, 40.0]}}}
    ms, slowdown = under_load.summarize(medians, [0, 3])
    assert ms["nc"][0]["op"] == 2.0 and ms["nc"][3]["op"] == 3.0
    # per-round ratios 3, 1, 10: the median compares figures of one round
    assert slowdown["nc"][3]["op"] == 3.0
    assert "x" in under_load.table(ms, slowdown, [0, 3]).splitlines()[0]


def test_layouts_script_times_both_layouts_and_summarizes():
    """perf/layouts.py on one small sweep case: a row with both layouts' times, and the per-pass summary."""
    run = subprocess.run([sys.executable, os.path.join(PERF, "layouts.py"), "--match", "sw-lenet-64x28",
                          "--rounds", "1"], capture_output=True, text=True, check=True)
    lines = run.stdout.splitlines()
    row = next(line for line in lines if line.startswith("sw-lenet-64x28"))
    assert len(row.split()) == 7 and all(float(v) > 0 for v in row.split()[1:])
    assert any(line.startswith("fwd: 1 shapes") for line in lines)
    assert any(line.startswith("bwd: 1 shapes") for line in lines)
