"""Is commit B slower than commit A? Interleaved A/B timing of numbaconv's kernels.

    python perf/compare.py A B [--threshold 0.10] [--rounds 8] [--quick]

A and B are any git revisions (``HEAD~1``, a branch, a sha) or ``.`` for the
working tree as it is on disk. Each revision is exported (``git archive``,
which leaves no trace in the repository) into a temporary directory with a
Numba cache of its own; a first process per side compiles the kernels and
saves their results, which must agree between A and B. Then the rounds: in
each, one fresh process times every op for A and one for B, in the order
A B, B A, A B, ... so that drift in the machine's load hits both sides
alike. Each process reports, per op, the median of ``--runs`` calls; each
round gives a ratio B/A per op. The clock is the process CPU time, with
threads waiting passively (``OMP_WAIT_POLICY=PASSIVE``) and a single-threaded
BLAS, so it measures work and barely moves when other jobs take the cores;
``--clock wall`` times elapsed time instead (for parallel-efficiency changes,
on a quiet machine).

Per op the report gives the median of the per-round ratios, its bootstrap
confidence interval (resampling rounds) and the interquartile range of the
ratios. An op is a REGRESSION only when the whole interval lies above
1 + threshold: slower by more than the threshold beyond the noise measured
in this run. Exit status: 0 no regression, 1 a regression, 2 a failure
(a side crashed, an op failed, or A and B compute different results).

The benchmark harness (cases, worker) is always this checkout's perf/; only
the ``numbaconv`` package comes from A and B.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import cases as C
import worker as W

PERF_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(PERF_DIR)


def say(msg):
    print(f"compare: {msg}", file=sys.stderr, flush=True)


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def resolve(repo, rev):
    """(label, sha or None, source): a revision, or '.' / a directory for files on disk."""
    if rev == "." or os.path.isdir(rev):
        path = repo if rev == "." else os.path.abspath(rev)
        return f"{os.path.basename(path) or path} (working tree)", None, path
    try:
        sha = git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"compare: {rev!r} is not a revision of {repo}") from None
    subject = git(repo, "log", "-1", "--format=%s", sha)
    return f"{rev} = {sha[:10]} {subject[:50]!r}", sha, None


def export(repo, sha, dest):
    """The tree of ``sha`` under ``dest`` (git archive | tar: no worktree, no git state change)."""
    os.makedirs(dest)
    archive = subprocess.Popen(["git", "-C", repo, "archive", "--format=tar", sha],
                               stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", dest], stdin=archive.stdout, check=True)
    archive.stdout.close()
    if archive.wait() != 0:
        raise SystemExit(f"compare: git archive {sha} failed")


class Side:
    def __init__(self, name, label, root, tmp):
        self.name, self.label, self.root = name, label, root
        self.cache = os.path.join(tmp, f"numba-cache-{name}")
        self.outputs = os.path.join(tmp, f"outputs-{name}")
        self.rounds = []  # per round: {op: median seconds}


def run(side, args, tmp, extra, tag):
    """One worker process for ``side``; returns its report (or raises SystemExit on a crash)."""
    result = os.path.join(tmp, f"{side.name}-{tag}.json")
    env = dict(os.environ, PYTHONPATH=side.root, NUMBA_CACHE_DIR=side.cache, PYTHONHASHSEED="0")
    if args.threads:
        for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(args.threads)
    if args.clock == "cpu":
        # CPU time measures work only if waiting threads sleep instead of
        # spinning: passive OpenMP waits, and a BLAS without a thread pool.
        env.update(OMP_WAIT_POLICY="PASSIVE", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, os.path.join(PERF_DIR, "worker.py"), "--impl", args.impl,
           "--inputs", tmp, "--result", result, "--cases", *[c.name for c in args.case_list],
           "--warmup", "1", *extra]
    proc = subprocess.run(cmd, env=env, cwd=PERF_DIR, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0 or not os.path.exists(result):
        sys.stderr.write(proc.stderr[-3000:])
        say(f"side {side.name} ({side.label}) crashed: exit code {proc.returncode}")
        raise SystemExit(2)
    with open(result) as f:
        report = json.load(f)
    module_file = (report.get("runtime") or {}).get("module_file", "")
    if not os.path.abspath(module_file).startswith(os.path.abspath(side.root) + os.sep):
        say(f"side {side.name} imported numbaconv from {module_file}, not from {side.root}")
        raise SystemExit(2)
    return report


def bootstrap_ci(values, confidence, resamples, rng):
    """Percentile bootstrap interval of the median of ``values``."""
    values = np.asarray(values)
    idx = rng.integers(0, len(values), size=(resamples, len(values)))
    medians = np.median(values[idx], axis=1)
    tail = (1 - confidence) / 2
    return float(np.quantile(medians, tail)), float(np.quantile(medians, 1 - tail))


def verdict(ratio, lo, hi, threshold):
    slower, faster = 1 + threshold, 1 / (1 + threshold)
    if lo > slower:
        return "REGRESSION"
    if hi < faster:
        return "faster"
    if ratio > slower:
        return "slower? (within noise: repeat)"
    if ratio < faster:
        return "faster? (within noise: repeat)"
    return "same"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="baseline revision")
    p.add_argument("b", help="candidate revision ('.' = the working tree)")
    p.add_argument("--threshold", type=float, default=0.10,
                   help="relative slow-down that counts as a regression, beyond the noise (0.10 = 10%%)")
    p.add_argument("--rounds", type=int, default=8, help="A/B process pairs (>= 4 for a useful interval)")
    p.add_argument("--runs", type=int, default=7, help="timed calls per op in each process")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                   help="cpu (default): process CPU time with passive thread waits, robust to other "
                        "load on a shared machine; wall: elapsed time, needs a quiet machine")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--quick", action="store_true", help="the --quick batch sizes of bench.py")
    p.add_argument("--cases", nargs="*", default=[], help=f"subset of: {' '.join(C.BY_NAME)}")
    p.add_argument("--impl", default="numbaconv", choices=("numbaconv", "reference"))
    p.add_argument("--threads", type=int)
    p.add_argument("--repo", default=REPO, help="the git repository (default: this checkout)")
    p.add_argument("--json", help="also write the per-round figures to this file")
    p.add_argument("--startup", action="store_true",
                   help="also compare start-up: in every round and side, perf/startup.py in a new "
                        "process with an empty Numba cache (rows startup.<op>: compile + first call; "
                        "startup.all: import + every first call) and again with that cache "
                        "(startup-warm.all); slow: a cold compile of the whole API per side and round")
    p.add_argument("--startup-dtype", default="float32", choices=("float32", "float64"))
    args = p.parse_args(argv)
    if args.rounds < 2:
        p.error("--rounds must be >= 2")
    args.case_list = C.select(args.cases)
    return args


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    repo = os.path.abspath(args.repo)
    tmp = tempfile.mkdtemp(prefix="numbaconv-compare-")
    try:
        sides = []
        for name, rev in (("A", args.a), ("B", args.b)):
            label, sha, path = resolve(repo, rev)
            root = path
            if sha:
                root = os.path.join(tmp, f"tree-{name}")
                export(repo, sha, root)
            sides.append(Side(name, label, root, tmp))
        a, b = sides
        C.save_inputs(tmp, args.case_list, args.quick)

        # Compile into each side's own cache and keep the results to compare.
        for side in sides:
            say(f"{side.name}: {side.label}: compiling (own Numba cache) and computing results")
            report = run(side, args, tmp, ["--startup-only", "--outputs", side.outputs], "warmup")
            if report["errors"]:
                say(f"{side.name}: ops failed: {[e['op'] for e in report['errors']]}")
                raise SystemExit(2)
        differ = outputs_differ(a, b, args.impl)

        for r in range(args.rounds):
            order = (a, b) if r % 2 == 0 else (b, a)
            for side in order:
                report = run(side, args, tmp, ["--runs", str(args.runs)], f"round{r}")
                key = "cpu_median_ms" if args.clock == "cpu" else "median_ms"
                side.rounds.append({o["op"]: o[key] for o in report["ops"] if key in o})
                if args.startup:
                    side.rounds[-1].update(startup_round(side, args, tmp, r))
            say(f"round {r + 1}/{args.rounds} ({order[0].name}{order[1].name}) done")

        rows = analyse(a, b, args)
        print(render(a, b, rows, args, differ, time.perf_counter() - t0))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"a": a.label, "b": b.label, "threshold": args.threshold, "rows": rows,
                           "rounds": {"A": a.rounds, "B": b.rounds}, "results_differ": differ}, f, indent=1)
        if differ:
            return 2
        return 1 if any(r["verdict"] == "REGRESSION" for r in rows) else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def startup_round(side, args, tmp, r):
    """{startup[-warm].<op>: ms} from two new processes: an empty Numba cache of its own, then warm."""
    cache = os.path.join(tmp, f"startup-cache-{side.name}-{r}")
    env = dict(os.environ, PYTHONPATH=side.root, NUMBA_CACHE_DIR=cache, PYTHONHASHSEED="0",
               OMP_WAIT_POLICY="PASSIVE")
    if args.threads:
        env["NUMBA_NUM_THREADS"] = str(args.threads)
    key = "first_call_cpu_ms" if args.clock == "cpu" else "first_call_ms"
    rows = {}
    for prefix in ("startup", "startup-warm"):
        result = os.path.join(tmp, f"{side.name}-{prefix}-{r}.json")
        proc = subprocess.run([sys.executable, os.path.join(PERF_DIR, "startup.py"), "--result", result,
                               "--dtype", args.startup_dtype], env=env, cwd=PERF_DIR,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0 or not os.path.exists(result):
            sys.stderr.write(proc.stderr[-3000:])
            say(f"side {side.name} ({side.label}): start-up run crashed: exit code {proc.returncode}")
            raise SystemExit(2)
        with open(result) as f:
            report = json.load(f)
        if not os.path.abspath(report["module_file"]).startswith(os.path.abspath(side.root) + os.sep):
            say(f"side {side.name}: start-up imported numbaconv from {report['module_file']}")
            raise SystemExit(2)
        if prefix == "startup":  # warm first calls take microseconds: only their sum is compared
            for op, ms in report[key].items():
                rows[f"{prefix}.{op}"] = ms
        rows[f"{prefix}.all"] = sum(report[key].values()) + 1e3 * report["import_s"]
    shutil.rmtree(cache, ignore_errors=True)
    return rows


def outputs_differ(a, b, impl):
    """{op: errors} where B's results are not A's (a perf comparison of different maths is void)."""
    dir_a, dir_b = os.path.join(a.outputs, impl), os.path.join(b.outputs, impl)
    if not (os.path.isdir(dir_a) and os.path.isdir(dir_b)):
        return {"*": "a side saved no results"}
    differ = {}
    for name in sorted(os.listdir(dir_a)):
        op = name[:-len(".npz")]
        want = W.load_saved(a.outputs, impl, op)
        got = W.load_saved(b.outputs, impl, op)
        if got is None:
            continue
        errors, ok = W.check(got, want)
        if not ok:
            differ[op] = errors
    return differ


def analyse(a, b, args):
    rng = np.random.default_rng(0)
    rows = []
    ops = C.op_ids(args.case_list)
    ops += [op for op in (a.rounds[0] if a.rounds else {}) if op.startswith("startup") and op not in ops]
    for op in ops:
        pairs = [(ra[op], rb[op]) for ra, rb in zip(a.rounds, b.rounds) if op in ra and op in rb]
        if not pairs:
            continue
        rows.append({"op": op, **judge(pairs, args.threshold, args.confidence, rng)})
    return rows


def judge(pairs, threshold, confidence=0.95, rng=None):
    """The verdict on B against A from per-round (A, B) times (the history's step rule too).

    The median of the per-round ratios B/A, its bootstrap interval, their
    IQR, each side's round-to-round spread, and :func:`verdict`.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    ta, tb = np.array(pairs, dtype=float).T
    ratios = tb / ta
    ratio = float(np.median(ratios))
    lo, hi = bootstrap_ci(ratios, confidence, 4000, rng)
    q1, q3 = (float(q) for q in np.quantile(ratios, [0.25, 0.75]))
    return {
        "a_ms": float(np.median(ta)), "b_ms": float(np.median(tb)),
        "ratio": ratio, "ci": [lo, hi], "iqr": [q1, q3], "rounds": len(pairs),
        "a_spread": float(np.std(ta) / np.mean(ta)), "b_spread": float(np.std(tb) / np.mean(tb)),
        "verdict": verdict(ratio, lo, hi, threshold),
    }


def render(a, b, rows, args, differ, wall):
    pct = int(round(args.confidence * 100))
    w = max([16] + [len(r["op"]) + 1 for r in rows])
    lines = [
        f"A: {a.label}",
        f"B: {b.label}",
        f"{args.impl}, {'quick' if args.quick else 'full'} sizes; {args.rounds} rounds of one process per "
        f"side (order AB, BA, ...), median {args.clock} time of {args.runs} calls per op per process; threshold "
        f"{args.threshold:.0%} beyond the {pct}% bootstrap interval; {wall:.0f} s",
        "",
        f"{'op':<{w}}{'A ms':>10}{'B ms':>10}{'B/A':>7}{f'{pct}% CI':>16}{'IQR':>16}{'cv A':>7}{'cv B':>7}  verdict",
    ]
    for r in rows:
        ci = "[{:.3f}, {:.3f}]".format(*r["ci"])
        iqr = "[{:.3f}, {:.3f}]".format(*r["iqr"])
        lines.append(
            f"{r['op']:<{w}}{r['a_ms']:10.3f}{r['b_ms']:10.3f}{r['ratio']:7.3f}{ci:>16}{iqr:>16}"
            f"{r['a_spread']:7.1%}{r['b_spread']:7.1%}  {r['verdict']}")
    regressions = [r["op"] for r in rows if r["verdict"] == "REGRESSION"]
    lines.append("")
    if args.rounds < 4:
        lines.append(f"note: with {args.rounds} rounds the interval is little more than the range "
                     "of the ratios; use >= 4 (default 8) before trusting a verdict")
    if differ:
        lines.append(f"RESULTS DIFFER between A and B (max|err|/max|A|): {differ}")
    lines.append(f"REGRESSION in {', '.join(regressions)}: slower by more than {args.threshold:.0%} "
                 "beyond the measured noise" if regressions else
                 f"no op is slower by more than {args.threshold:.0%} beyond the measured noise")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
