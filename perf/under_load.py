"""How much each library slows down when the machine is busy (quiet vs 1 and 3 busy neighbours).

Users share machines with data loaders and other jobs. This runs the same
ops for numbaconv, PyTorch and TensorFlow (oneDNN), each in its own fresh
``worker.py`` process (batch mode: first call, check, timed calls), first on
a quiet machine, then with 1 and with 3 neighbour processes that spin in a
busy loop, and reports each op's median per load and its slowdown against
quiet:

- ``conv.fwd`` / ``conv.bwd``: the seed benchmark (128x28x28x3 * 3x3x3x16 SAME), long calls;
- ``pool_cs231n.fwd``: max pool 2x2/2 on the cs231n-sized (100, 3, 32, 32),
  NCHW for numbaconv (TensorFlow's CPU pool is NHWC only; PyTorch is NCHW);
- ``conv_b1.bwd``: the seed conv's backward at batch 1, a ~0.1 ms call.

(The other pass of each case is timed too and shown.) It loads every core of
the machine on purpose: do not run it while others are timing anything.

    python perf/under_load.py [--runs N] [--min-time S] [--neighbours 0 1 3] [--rounds R]
                              [--impls numbaconv torch tensorflow] [--threads N]

``make bench-under-load`` runs it with the defaults. Results: a table on
stdout and ``perf/results/under-load-<timestamp>.json``.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import cases as C
import timing

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = ("conv", "pool_cs231n", "conv_b1")
HIGHLIGHT = ("conv.fwd", "conv.bwd", "pool_cs231n.fwd", "conv_b1.bwd")
BUSY_LOOP = "while True:\n    pass\n"


def start_neighbours(count):
    """``count`` processes that each keep one CPU busy until stopped."""
    return [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]


def stop_neighbours(procs):
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def run_worker(impl, inputs, outputs, check_against, args):
    """One fresh worker.py process in batch mode; its JSON report."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result = f.name
    cmd = [sys.executable, os.path.join(HERE, "worker.py"), "--impl", impl, "--inputs", inputs,
           "--cases", *CASES, "--exact-cases", "--runs", str(args.runs),
           "--min-time", str(args.min_time),
           "--outputs", outputs, "--result", result]
    if check_against:
        cmd += ["--check-against", *check_against]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    subprocess.run(cmd, check=True)
    with open(result) as f:
        report = json.load(f)
    os.unlink(result)
    return report


def measure(args, inputs, outputs):
    """{impl: {neighbours: {op: [median ms per round]}}}, and the workers' runtime info.

    Each round runs every load in turn (quiet first), and every impl under
    each load, so a round's quiet and busy figures are minutes apart at most.
    """
    medians, info = {}, {}
    for _ in range(args.rounds):
        for neighbours in args.neighbours:
            procs = start_neighbours(neighbours)
            try:
                time.sleep(0.5)  # let the neighbours get going
                for i, impl in enumerate(args.impls):
                    report = run_worker(impl, inputs, outputs, args.impls[:i], args)
                    for err in report["errors"]:
                        print(f"{impl}: {err['op']} failed:\n{err['error']}", file=sys.stderr)
                    wrong = [r["op"] for r in report["ops"] if r.get("ok") is False]
                    if wrong:
                        print(f"{impl}: wrong results, not timed: {wrong}", file=sys.stderr)
                    by_op = medians.setdefault(impl, {}).setdefault(neighbours, {})
                    for r in report["ops"]:
                        if "median_ms" in r:
                            by_op.setdefault(r["op"], []).append(r["median_ms"])
                    info.setdefault(impl, report.get("runtime"))
            finally:
                stop_neighbours(procs)
    return medians, info


def summarize(medians, neighbours):
    """(median ms, slowdown) per impl, load and op: medians over rounds.

    The slowdown is the median over rounds of each round's busy / quiet
    ratio, so a round's ratio compares figures taken minutes apart.
    """
    quiet = neighbours[0]
    ms, slowdown = {}, {}
    for impl, by_load in medians.items():
        for n, by_op in by_load.items():
            for op, rounds in by_op.items():
                ms.setdefault(impl, {}).setdefault(n, {})[op] = statistics.median(rounds)
                base = by_load.get(quiet, {}).get(op)
                if n != quiet and base:
                    ratios = [t / b for t, b in zip(rounds, base, strict=False) if b]
                    slowdown.setdefault(impl, {}).setdefault(n, {})[op] = statistics.median(ratios)
    return ms, slowdown


def table(ms, slowdown, neighbours):
    """Rows: impl x op; columns: the median per load and the slowdown against the first load."""
    quiet = neighbours[0]
    head = f"{'impl':<11} {'op':<17}" + "".join(
        f" {f'{n} busy (ms)':>13}" + (f" {'x':>6}" if n != quiet else "") for n in neighbours)
    lines = [head, "-" * len(head)]
    for impl, by_load in ms.items():
        ops = sorted(by_load.get(quiet, {}), key=lambda op: (op not in HIGHLIGHT, op))
        for op in ops:
            row = f"{impl:<11} {op:<17}"
            for n in neighbours:
                t = by_load.get(n, {}).get(op)
                row += f" {t:13.3f}" if t is not None else f" {'-':>13}"
                if n != quiet:
                    x = slowdown.get(impl, {}).get(n, {}).get(op)
                    row += f" {x:6.2f}" if x is not None else f" {'-':>6}"
            lines.append(row)
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=30, help="timed calls per op at least (default 30)")
    p.add_argument("--min-time", type=float, default=2.0,
                   help="keep timing an op until this many seconds (default 2)")
    p.add_argument("--neighbours", type=int, nargs="+", default=[0, 1, 3],
                   help="busy neighbour processes per run; the first is the baseline (default 0 1 3)")
    p.add_argument("--impls", nargs="+", default=["numbaconv", "torch", "tensorflow"],
                   choices=["numbaconv", "torch", "tensorflow", "reference"])
    p.add_argument("--threads", type=int, help="threads per library (default: each library's own)")
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat every load this many times; figures are medians over rounds (default 1)")
    p.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = os.path.join(tmp, "inputs"), os.path.join(tmp, "outputs")
        os.makedirs(inputs)
        C.save_inputs(inputs, C.select(list(CASES), exact=True), quick=False)
        medians, info = measure(args, inputs, outputs)
    ms, slowdown = summarize(medians, args.neighbours)
    print(table(ms, slowdown, args.neighbours))
    print(f"medians per op of >= {args.runs} timed calls, then over {args.rounds} round(s); "
          f"x = slowdown against {args.neighbours[0]} busy neighbours (median of the rounds' ratios)")
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, time.strftime("under-load-%Y%m%d-%H%M%S.json"))
    with open(path, "w") as f:
        json.dump({"args": vars(args), "medians_ms": ms, "rounds_ms": medians, "slowdown": slowdown,
                   "runtime": info, "cpu": timing.cpu_info(), "versions": timing.versions()}, f, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
