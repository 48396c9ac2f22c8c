"""One implementation in one fresh process: check each op, then time it.

Started by ``bench.py`` and ``compare.py``, never by hand (``--help`` lists
the options). Two modes:

- batch (``compare.py``, and bench.py's warm-cache start-up run): every op in
  turn: first call, check, timed calls; results to the ``--result`` JSON file.
- ``--serve`` (``bench.py``): the process stays up and answers one JSON
  command per stdin line (``first``, ``time``, ``info``, ``quit``), so that
  bench.py can interleave the implementations op by op while each keeps its
  own process. Answers are stdout lines starting with ``@@bench``
  (frameworks may print on stdout too).

``first`` times an op's first call alone (in a fresh process with an empty
Numba cache, that is compile + run; with a warm cache, load + run), saves its
result for the other workers, and compares it with the results already saved
by the implementations in ``--check-against``. Only an op whose result
matches is ever timed: a wrong kernel is never reported as fast.
"""
import argparse
import json
import os
import sys
import time
import traceback

T_START = time.perf_counter()

import numpy as np  # noqa: E402

import cases as C  # noqa: E402
import impls  # noqa: E402
import timing  # noqa: E402

ANSWER = "@@bench "
# Largest accepted max|a - b| / max|b| (per output array). float32 results
# of long reductions (dw sums 1e5 products here) differ across libraries and
# thread counts by ~1e-6..1e-5 of the largest entry; an indexing bug shows
# up as ~1.
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-9}
ENV_KEYS = ("NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "NUMBA_CACHE_DIR", "OMP_NUM_THREADS",
            "OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS")


def max_rel_error(got, want):
    """Deviation of ``got`` from ``want`` as a fraction of want's largest entry (inf: bad shape)."""
    if got.shape != want.shape:
        return float("inf")
    if got.dtype.kind in "iu" or want.dtype.kind in "iu":
        return float(np.mean(got != want))  # argmax: fraction of differing indices
    with np.errstate(invalid="ignore"):
        scale = float(np.max(np.abs(want))) if want.size else 0.0
        err = float(np.max(np.abs(got.astype(np.float64) - want))) if want.size else 0.0
    if np.isnan(err):
        return float("inf")
    return err / scale if scale else err


def tolerance(got, want):
    """Exact for indices; float32's tolerance when either side is float32 or narrower."""
    if got.dtype.kind in "iu" or want.dtype.kind in "iu":
        return 0.0
    narrowest = min(got.dtype.itemsize, want.dtype.itemsize)
    return TOLERANCE[np.dtype(np.float32 if narrowest <= 4 else np.float64)]


def check(outputs, expected):
    """{name: error} over the arrays both have, and whether every error is within tolerance."""
    errors, ok = {}, True
    for name, want in expected.items():
        if name not in outputs:
            continue
        got = np.asarray(outputs[name])
        want = np.asarray(want)
        errors[name] = max_rel_error(got, want)
        ok &= errors[name] <= tolerance(got, want)
    return errors, ok


def load_saved(directory, impl, op):
    path = os.path.join(directory, impl, f"{op}.npz")
    if not os.path.exists(path):
        return None
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def progress(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class Runner:
    """One implementation's ops, built on first use and kept for the timed calls."""

    def __init__(self, impl, inputs, outputs=None, check_against=(), threads=None):
        self.impl, self.inputs, self.outputs = impl, inputs, outputs
        self.check_against = list(check_against)
        t0 = time.perf_counter()
        self.module, _ = impls.setup(impl, threads)
        self.import_s = time.perf_counter() - t0
        self.ops = {}

    def first(self, op_id):
        """Build the op, time its first call, save and check its result. None: not applicable."""
        name, pass_ = op_id.split(".")
        case = C.BY_NAME[name]
        data = C.load_inputs(self.inputs, case)
        rec = {"op": op_id, "case": name, "pass": pass_, "impl": self.impl,
               "shape": list(data["x"].shape)}
        op = impls.build(self.impl, self.module, case, pass_, data)
        if op is None:
            return None
        t0 = time.perf_counter()
        result = op.call()
        rec["first_call_ms"] = 1e3 * (time.perf_counter() - t0)
        if self.outputs or op.expected:
            outputs = {k: np.asarray(v) for k, v in op.outputs(result).items()}
            if self.outputs:
                os.makedirs(os.path.join(self.outputs, self.impl), exist_ok=True)
                np.savez(os.path.join(self.outputs, self.impl, f"{op_id}.npz"), **outputs)
            if op.expected:  # the seed: its own inputs, so its own reference answer
                targets = {"reference": op.expected()}
            else:
                targets = {}
                for other in self.check_against:
                    saved = load_saved(self.outputs, other, op_id)
                    if saved is not None:
                        targets[other] = saved
            rec["check"] = {}
            for other, expected in targets.items():
                errors, ok = check(outputs, expected)
                rec["check"][other] = errors
                rec["ok"] = rec.get("ok", True) and ok
        # No "ok" key: nothing to compare with (e.g. the reference itself).
        self.ops[op_id] = (op, rec.get("ok") is not False)
        return rec

    def time(self, op_id, runs, min_time=0.0, warmup=1):
        """Wall and CPU seconds of ``runs``+ calls; refuses an op that failed its check."""
        op, ok = self.ops[op_id]
        if not ok:
            raise RuntimeError(f"{self.impl} {op_id}: wrong result, not timed")
        return timing.time_calls(op.call, runs, min_time, warmup)

    def info(self):
        return {"runtime": impls.runtime_info(self.impl, self.module),
                "env": {k: os.environ.get(k) for k in ENV_KEYS},
                "import_s": self.import_s, "pid": os.getpid()}


def run_op(runner, op_id, args):
    """Batch mode, one op: first call and check, then (if correct) the timed calls."""
    rec = runner.first(op_id)
    if rec is None:
        return None
    label = f"{runner.impl:<10} {op_id:<16}"
    if args.startup_only:
        progress(f"{label} first call {rec['first_call_ms']:9.1f} ms")
        return rec
    if rec.get("ok") is False:
        progress(f"{label} WRONG RESULT, not timed: {rec['check']}")
        return rec
    rec.update(timing.summary(*runner.time(op_id, args.runs, args.min_time, args.warmup)))
    progress(f"{label} median {rec['median_ms']:9.3f} ms  min {rec['min_ms']:9.3f} ms"
             f"  ({rec['runs']} runs; first call {rec['first_call_ms']:.1f} ms)")
    return rec


def batch(runner, args):
    report = {"impl": args.impl, "ops": [], "errors": []}
    for op_id in C.op_ids(C.select(args.cases, exact=args.exact_cases)):
        try:
            rec = run_op(runner, op_id, args)
        except Exception:  # one broken op must not hide the others
            progress(f"{args.impl:<10} {op_id:<16} FAILED: {traceback.format_exc(limit=2)}")
            report["errors"].append({"op": op_id, "error": traceback.format_exc(limit=4)})
            continue
        if rec is not None:
            report["ops"].append(rec)
    report.update(runner.info())
    report["process_s"] = time.perf_counter() - T_START
    with open(args.result, "w") as f:
        json.dump(report, f)


def answer(obj):
    sys.stdout.write(ANSWER + json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve(runner):
    answer({"ready": True, "import_s": runner.import_s})
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["cmd"] == "quit":
                answer({"bye": True})
                return
            if cmd["cmd"] == "first":
                answer({"rec": runner.first(cmd["op"])})
            elif cmd["cmd"] == "time":
                wall, cpu = runner.time(cmd["op"], cmd["runs"], cmd.get("min_time", 0.0),
                                        cmd.get("warmup", 1))
                answer({"wall": wall, "cpu": cpu})
            elif cmd["cmd"] == "info":
                answer(runner.info())
            else:
                answer({"error": f"unknown command {cmd['cmd']!r}"})
        except Exception:
            answer({"error": traceback.format_exc(limit=4)})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--impl", required=True, choices=impls.IMPLS)
    p.add_argument("--inputs", required=True, help="directory of <case>.<array>.npy")
    p.add_argument("--cases", nargs="*", default=[])
    p.add_argument("--exact-cases", action="store_true", help="--cases are exact names, not prefixes")
    p.add_argument("--outputs", help="directory where results are saved and read back")
    p.add_argument("--check-against", nargs="*", default=[])
    p.add_argument("--threads", type=int)
    p.add_argument("--serve", action="store_true", help="answer commands on stdin (bench.py)")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--min-time", type=float, default=0.0)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--startup-only", action="store_true", help="first calls only, no timing")
    p.add_argument("--result", help="JSON file to write (batch mode)")
    args = p.parse_args(argv)
    runner = Runner(args.impl, args.inputs, args.outputs, args.check_against, args.threads)
    if args.serve:
        serve(runner)
    else:
        if not args.result:
            p.error("--result is required in batch mode")
        batch(runner, args)


if __name__ == "__main__":
    main()
