"""The seed benchmark and its peers, side by side in one run.

    python perf/bench.py            # the full benchmark (a few minutes)
    python perf/bench.py --quick    # smoke test: small batches, 3 runs (CI)

Times conv forward/backward on the seed benchmark shape (and the seed's two
other shapes), max pool 2x2/2 and LRN forward/backward, for the seed's own
NumPy code, ``numbaconv.reference``, ``numbaconv``, TensorFlow and PyTorch
(when installed). Each implementation lives in its own process
(``worker.py --serve``), all on the same seeded inputs. First every op is
checked (numbaconv against the reference and TensorFlow, the others against
the reference); then, op by op, the implementations are timed in rounds,
taking turns, so that a change in the machine's load hits all of them.

Writes a table to stdout, progress to stderr, and
``perf/results/<timestamp>-<commit>.json`` plus a ``.png`` plot of the table.
Exits 1 only when numbaconv computes a wrong result or fails; slow timings
never fail the run. See perf/README.md for every column.
"""
import argparse
import datetime
import importlib.util
import json
import math
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import cases as C
import impls
import timing

PERF_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(PERF_DIR)
# Order of the worker runs: each checks itself against the outputs saved by
# the ones before it, so the reference and TensorFlow come before numbaconv.
RUN_ORDER = ("reference", "tensorflow", "torch", "torchcl", "seed", "numbaconv")
TABLE_ORDER = ("seed", "reference", "numbaconv", "tensorflow", "torch", "torchcl")
CHECK_AGAINST = {"numbaconv": ["reference", "tensorflow"], "tensorflow": ["reference"],
                 "torch": ["reference"], "torchcl": ["reference"]}
FRAMEWORK_MODULE = {"tensorflow": "tensorflow", "torch": "torch", "torchcl": "torch"}
WORKER_TIMEOUT_S = 1800
# Between two implementations' turns: lets the previous one's OpenMP threads
# stop spinning and go to sleep before the next one starts.
HANDOFF_PAUSE_S = 0.02
CHECK_WORD = {True: "ok", False: "WRONG"}  # no verdict: nothing to compare with (the reference)


def progress(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small batches, 3 runs, no cold-cache compile measurement (CI smoke test)")
    p.add_argument("--runs", type=int, help="minimum timed runs per op (default 20, quick 3)")
    p.add_argument("--min-time", type=float,
                   help="keep timing a fast op until this many seconds (default 0.5, quick 0)")
    p.add_argument("--rounds", type=int,
                   help="turns each implementation takes per op; the runs are split over them "
                        "(default 4, quick 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls at the start of each turn")
    p.add_argument("--cases", nargs="*", default=[], help=f"subset of: {' '.join(C.BY_NAME)}")
    p.add_argument("--impls", nargs="*", default=list(RUN_ORDER), choices=impls.IMPLS)
    p.add_argument("--threads", type=int,
                   help="threads for every implementation (default: each framework's own default, "
                        "PyTorch raised to all usable CPUs)")
    cold = p.add_mutually_exclusive_group()
    cold.add_argument("--cold", dest="cold", action="store_true", default=None,
                      help="measure numbaconv's compile time from an empty Numba cache (default "
                           "unless --quick)")
    cold.add_argument("--no-cold", dest="cold", action="store_false",
                      help="use numbaconv's normal on-disk cache, as found")
    p.add_argument("--startup-only", action="store_true",
                   help="only the start-up section: import and each public op's first call, with an "
                        "empty and then a warm Numba cache (perf/startup.py)")
    p.add_argument("--startup-dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--out-dir", default=os.path.join(PERF_DIR, "results"))
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    args.runs = args.runs or (3 if args.quick else 20)
    args.min_time = args.min_time if args.min_time is not None else (0.0 if args.quick else 0.5)
    args.cold = (not args.quick) if args.cold is None else args.cold
    args.rounds = max(1, min(args.rounds or (3 if args.quick else 4), args.runs))
    return args


# ------------------------------------------------------------------ workers


def worker_env(impl, args, numba_cache):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, env.get("PYTHONPATH")]))
    env["PYTHONHASHSEED"] = "0"
    if impl == "tensorflow":
        env["TF_ENABLE_ONEDNN_OPTS"] = "1"
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if impl == "numbaconv" and numba_cache:
        env["NUMBA_CACHE_DIR"] = numba_cache
    if args.threads:
        for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(args.threads)
    return env


class WorkerDied(RuntimeError):
    pass


class OpFailed(RuntimeError):
    pass


def _worker_cmd(impl, args, tmp, extra):
    cmd = [sys.executable, os.path.join(PERF_DIR, "worker.py"), "--impl", impl, "--inputs", tmp,
           "--cases", *[c.name for c in args.case_list], *extra]
    return cmd + (["--threads", str(args.threads)] if args.threads else [])


class Worker:
    """A ``worker.py --serve`` process: one implementation, answering one command at a time."""

    def __init__(self, impl, args, tmp, outputs, numba_cache):
        self.impl, self.log, self.dead = impl, [], False
        self.answers = queue.Queue()
        extra = ["--serve", "--outputs", outputs, "--check-against", *CHECK_AGAINST.get(impl, [])]
        self.proc = subprocess.Popen(
            _worker_cmd(impl, args, tmp, extra), env=worker_env(impl, args, numba_cache),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            bufsize=1, cwd=PERF_DIR)
        threading.Thread(target=self._read_answers, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self.ready = self.ask(None)

    def _read_answers(self):
        for line in self.proc.stdout:
            if line.startswith("@@bench "):
                self.answers.put(json.loads(line[len("@@bench "):]))
            else:
                self.log.append(line.rstrip())
        self.answers.put(None)  # end of file: the process is gone

    def _read_stderr(self):
        for line in self.proc.stderr:
            if line.startswith("bench: "):
                sys.stderr.write(line)
                sys.stderr.flush()
            else:
                self.log.append(line.rstrip())

    def _die(self, why):
        self.dead = True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.append(why)
        progress(f"{self.impl}: worker died ({why}); last lines of its output:")
        for line in self.log[-12:]:
            print(f"    {line}", file=sys.stderr)
        raise WorkerDied(why)

    def ask(self, cmd, timeout=WORKER_TIMEOUT_S):
        """Send one command (None: just wait for the next answer) and return the answer."""
        if self.dead:
            raise WorkerDied("already dead")
        if cmd is not None:
            try:
                self.proc.stdin.write(json.dumps(cmd) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # the answer queue reports the death
        try:
            ans = self.answers.get(timeout=timeout)
        except queue.Empty:
            self._die(f"no answer within {timeout} s")
        if ans is None:
            self._die(f"exit code {self.proc.wait()}")
        if "error" in ans:
            raise OpFailed(ans["error"])
        return ans

    def close(self):
        if self.dead:
            return
        try:
            self.ask({"cmd": "quit"}, timeout=60)
            self.proc.wait(timeout=60)
        except (WorkerDied, OpFailed, subprocess.TimeoutExpired):
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def run_batch(impl, args, tmp, extra, numba_cache, tag):
    """One ``worker.py`` batch run (numbaconv's warm-cache start-up); its report, or None."""
    result = os.path.join(tmp, f"result-{impl}{tag}.json")
    proc = subprocess.run(_worker_cmd(impl, args, tmp, [*extra, "--result", result]),
                          env=worker_env(impl, args, numba_cache), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, cwd=PERF_DIR, timeout=WORKER_TIMEOUT_S)
    for line in proc.stderr.splitlines():
        if line.startswith("bench: "):
            print(line, file=sys.stderr)
    if proc.returncode != 0 or not os.path.exists(result):
        progress(f"{impl}{tag}: worker failed (exit code {proc.returncode})")
        return None
    with open(result) as f:
        return json.load(f)


def available(impl):
    module = FRAMEWORK_MODULE.get(impl)
    return module is None or importlib.util.find_spec(module) is not None


# ------------------------------------------------------------------ derived figures


def derive(rows, limits):
    """Add rates, shares of the machine's limits and ratios to peers, per op."""
    by_op = {}
    for r in rows:
        by_op.setdefault(r["op"], {})[r["impl"]] = r
    for op, group in by_op.items():
        timed = {impl: r["median_ms"] for impl, r in group.items() if "median_ms" in r}
        peers = {i: t for i, t in timed.items() if i in impls.PEERS}
        best_peer = min(peers.values()) if peers else None
        for impl, r in group.items():
            case = C.BY_NAME[r["case"]]
            flops, nbytes = C.work(case, r["pass"], tuple(r["shape"]))
            r["flops"], r["bytes"] = flops, nbytes
            if "median_ms" not in r:
                continue
            t = r["median_ms"] / 1e3
            if flops:
                r["gflops"] = flops / t / 1e9
                r["pct_of_limit"] = 100 * r["gflops"] / limits["sgemm_gflops"]
            else:
                r["gbps"] = nbytes / t / 1e9
                r["pct_of_limit"] = 100 * r["gbps"] / limits["copy_gbps"]
            if "seed" in timed:
                r["speedup_vs_seed"] = timed["seed"] / r["median_ms"]
            if "tensorflow" in timed:
                r["ratio_to_tf"] = r["median_ms"] / timed["tensorflow"]
            if best_peer:
                r["ratio_to_best_peer"] = r["median_ms"] / best_peer
    return by_op


# ------------------------------------------------------------------ output


def fmt(value, spec, empty="-"):
    return empty if value is None else format(value, spec)


def check_text(r):
    if "check" not in r:
        return "-"
    worst = max((e for errs in r["check"].values() for e in errs.values()), default=0.0)
    if "ok" not in r:
        return "-" if not r["check"] else "?"
    return ("ok" if r["ok"] else "WRONG") + f" {worst:.0e}"


def table(doc):
    lines = []
    lim = doc["limits"]
    m = doc["machine"]
    git = doc["git"]
    lines.append(f"numbaconv benchmark  {doc['created']}  commit {git['short']}"
                 f"{' (dirty)' if git['dirty'] else ''}  {'QUICK (small batches)' if doc['quick'] else ''}")
    lines.append(f"machine: {m['cpu_model']}, {m['usable_cpus']} CPUs, SIMD {'/'.join(m['simd'])}; "
                 f"limits measured now: sgemm {lim['sgemm_gflops']:.0f} GFLOP/s, "
                 f"copy {lim['copy_gbps']:.1f} GB/s; load avg {m['loadavg_start'][0]:.2f} -> "
                 f"{doc['loadavg_end'][0]:.2f}")
    busy = m["loadavg_start"][0]  # before the run: the load of other processes
    if busy > 0.5 * m["usable_cpus"]:
        lines.append(f"WARNING: load average {busy:.1f} at the start, on {m['usable_cpus']} CPUs: other processes "
                     "compete for the cores, so wall times (parallel ones most) are inflated and noisy; "
                     "compare ratios measured in this run only, and see perf/README.md (noise policy).")
    head = (f"  {'impl':<12}{'median ms':>11}{'min ms':>10}{'runs':>5}{'rate':>12}{'%peak':>7}"
            f"{'x seed':>8}{'/TF':>7}{'/best':>7}{'1st ms':>9}  check")
    rows_by_op = doc["by_op"]
    for case in doc["case_list"]:
        for pass_ in C.PASSES:
            op = f"{case.name}.{pass_}"
            group = rows_by_op.get(op)
            if not group:
                continue
            any_row = next(iter(group.values()))
            lines.append("")
            lines.append(f"{case.title} - {'forward' if pass_ == 'fwd' else 'backward'}"
                         f"  [x {tuple(any_row['shape'])}]")
            lines.append(head)
            for impl in TABLE_ORDER:
                r = group.get(impl)
                if r is None:
                    continue
                if "gflops" in r:
                    rate = f"{r['gflops']:.1f} GF/s"
                elif "gbps" in r:
                    rate = f"{r['gbps']:.1f} GB/s"
                else:
                    rate = "-"
                lines.append(
                    f"  {impls.TITLES[impl]:<12}{fmt(r.get('median_ms'), '11.3f', f'{chr(45):>11}')}"
                    f"{fmt(r.get('min_ms'), '10.3f', f'{chr(45):>10}')}{fmt(r.get('runs'), '5d', '    -')}"
                    f"{rate:>12}{fmt(r.get('pct_of_limit'), '6.1f', '     -')}%"
                    f"{fmt(r.get('speedup_vs_seed'), '8.1f', '       -')}"
                    f"{fmt(r.get('ratio_to_tf'), '7.2f', '      -')}"
                    f"{fmt(r.get('ratio_to_best_peer'), '7.2f', '      -')}"
                    f"{fmt(r.get('first_call_ms'), '9.1f', '        -')}  {check_text(r)}")
    comp = doc.get("compile")
    if comp:
        lines.append("")
        if comp["cold"]:
            lines.append("numbaconv JIT (ms): first call with an empty Numba cache, first call in a "
                         "new process with the warm cache, steady-state median")
        else:
            lines.append("numbaconv start-up (ms): first call with the Numba cache as found, again in a "
                         "new process, steady-state median (--cold measures compile time)")
        lines.append(f"  import numbaconv: {comp['import_s_cold']:.2f} s (first process), "
                     f"{fmt(comp.get('import_s_warm'), '.2f')} s (second process)")
        first, again = ("1st (cold)", "1st (warm)") if comp["cold"] else ("1st call", "1st again")
        lines.append(f"  {'op':<18}{first:>12}{again:>12}{'steady':>10}"
                     f"{'compile' if comp['cold'] else '1st-steady':>11}")
        for op, c in comp["ops"].items():
            lines.append(f"  {op:<18}{c['first_cold_ms']:12.1f}{fmt(c.get('first_warm_ms'), '12.1f', '           -')}"
                         f"{fmt(c.get('steady_ms'), '10.3f', '         -')}{fmt(c.get('compile_ms'), '11.1f', '          -')}")
        lines.append(f"  total {'compile (cold' if comp['cold'] else '(first'} - steady, all ops): "
                     f"{comp['total_compile_s']:.1f} s")
    if doc.get("startup"):
        lines.append("")
        lines.extend(startup_table(doc["startup"]))
    lines.append("")
    lines.append("rate: GFLOP/s for conv (2*N*OH*OW*KH*KW*Cin*Cout per pass; backward = 2 passes), "
                 "effective GB/s for pool/LRN (bytes an ideal kernel moves); %peak: of the sgemm "
                 "rate (conv) or copy bandwidth (pool/LRN); x seed: seed median / this median; "
                 "/TF, /best: this median / TensorFlow's / the fastest peer's (<1 = faster); "
                 "1st ms: first call in the worker process; check: max|err|/max|ref| vs the reference "
                 "(numbaconv: also vs TF).")
    for impl in TABLE_ORDER:
        if impl in doc["frameworks"]:
            lines.append(f"  {impls.TITLES[impl]:<12}{impls.NOTES[impl]}")
    for impl, fw in doc["frameworks"].items():
        if fw.get("status") != "ok":
            lines.append(f"  {impl}: {fw.get('status')}")
    lines.append(f"threads: {doc['threads_summary']}")
    return "\n".join(lines)


def plot(doc, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ops = [f"{c.name}.{p}" for c in doc["case_list"] for p in C.PASSES if f"{c.name}.{p}" in doc["by_op"]]
    present = [i for i in TABLE_ORDER if any(i in doc["by_op"][op] for op in ops)]
    height = 0.8 / max(len(present), 1)
    fig, ax = plt.subplots(figsize=(10, 0.16 * len(ops) * max(len(present), 2) + 1.5))
    colors = dict(zip(TABLE_ORDER, ("#999999", "#4c72b0", "#dd8452", "#55a868", "#c44e52",
                                    "#8172b3")))
    for k, impl in enumerate(present):
        ys, xs = [], []
        for j, op in enumerate(ops):
            r = doc["by_op"][op].get(impl)
            if r and "median_ms" in r:
                ys.append(j + k * height)
                xs.append(r["median_ms"])
        ax.barh(ys, xs, height=height, color=colors[impl], label=impls.TITLES[impl])
        for y, x in zip(ys, xs):
            ax.text(x, y, f" {x:.3g}", va="center", fontsize=6)
    ax.set_yticks([j + height * (len(present) - 1) / 2 for j in range(len(ops))])
    ax.set_yticklabels(ops)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("median ms per call (log scale; shorter is faster)")
    git = doc["git"]
    ax.set_title(f"numbaconv {git['short']}{'+dirty' if git['dirty'] else ''} - "
                 f"{doc['machine']['cpu_model']}, {doc['machine']['usable_cpus']} CPUs"
                 f"{' - QUICK' if doc['quick'] else ''}", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def compile_summary(cold_rows, import_s, warm_report, cold):
    if not cold_rows:
        return None
    warm = {r["op"]: r for r in (warm_report or {}).get("ops", [])}
    ops, total = {}, 0.0
    for r in cold_rows:
        c = {"first_cold_ms": r["first_call_ms"], "steady_ms": r.get("median_ms")}
        if r["op"] in warm:
            c["first_warm_ms"] = warm[r["op"]]["first_call_ms"]
        if c["steady_ms"] is not None:
            c["compile_ms"] = max(c["first_cold_ms"] - c["steady_ms"], 0.0)
            total += c["compile_ms"]
        ops[r["op"]] = c
    return {"cold": cold, "import_s_cold": import_s,
            "import_s_warm": (warm_report or {}).get("import_s"), "ops": ops,
            "total_compile_s": total / 1e3}


def run_startup(args, cache, tag, tmp):
    """One ``perf/startup.py`` process with ``cache`` as its Numba cache; its report, or None."""
    result = os.path.join(tmp, f"startup-{tag}.json")
    env = worker_env("numbaconv", args, cache)
    env["OMP_WAIT_POLICY"] = "PASSIVE"  # CPU time then counts work, not spinning threads
    proc = subprocess.run([sys.executable, os.path.join(PERF_DIR, "startup.py"), "--result", result,
                           "--dtype", args.startup_dtype], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, cwd=PERF_DIR, timeout=WORKER_TIMEOUT_S)
    if proc.returncode != 0 or not os.path.exists(result):
        progress(f"start-up ({tag}) failed (exit code {proc.returncode}): {proc.stderr[-2000:]}")
        return None
    with open(result) as f:
        return json.load(f)


def startup_summary(args, tmp):
    """numbaconv's import and per-op first calls in a new process: empty cache, then warm cache."""
    cache = os.path.join(tmp, "startup-numba-cache")
    shutil.rmtree(cache, ignore_errors=True)
    progress(f"numbaconv start-up, {args.startup_dtype}: a new process with an empty Numba cache")
    cold = run_startup(args, cache, "cold", tmp)
    progress("numbaconv start-up: a new process with the cache it filled")
    warm = run_startup(args, cache, "warm", tmp) if cold else None
    if not (cold and warm):
        return None
    ops = {op: {"cold_ms": ms, "warm_ms": warm["first_call_ms"].get(op),
                "cold_cpu_ms": cold["first_call_cpu_ms"][op],
                "warm_cpu_ms": warm["first_call_cpu_ms"].get(op)}
           for op, ms in cold["first_call_ms"].items()}
    return {"dtype": args.startup_dtype, "import_s_cold": cold["import_s"], "import_s_warm": warm["import_s"],
            "ops": ops, "total_cold_s": cold["total_s"], "total_warm_s": warm["total_s"],
            "process_cold_s": cold["process_s"], "process_warm_s": warm["process_s"],
            "loadavg": [cold["loadavg"], warm["loadavg"]]}


def startup_table(st):
    lines = [f"numbaconv start-up ({st['dtype']}, NHWC then NCHW-only kernels, small inputs; "
             "new processes, empty then warm Numba cache; ms)",
             f"  {'op':<28}{'cold':>10}{'cold cpu':>10}{'warm':>9}{'warm cpu':>10}",
             f"  {'import numbaconv':<28}{1e3 * st['import_s_cold']:10.1f}{'':>10}"
             f"{1e3 * st['import_s_warm']:9.1f}"]
    for op, c in st["ops"].items():
        lines.append(f"  {op:<28}{c['cold_ms']:10.1f}{c['cold_cpu_ms']:10.1f}"
                     f"{fmt(c['warm_ms'], '9.1f')}{fmt(c['warm_cpu_ms'], '10.1f')}")
    lines.append(f"  {'all (import + first calls)':<28}{1e3 * st['total_cold_s']:10.1f}{'':>10}"
                 f"{1e3 * st['total_warm_s']:9.1f}")
    lines.append(f"  load average (1 min) at the end of each process: {st['loadavg'][0][0]:.1f}, "
                 f"{st['loadavg'][1][0]:.1f}")
    return lines


def threads_summary(frameworks):
    parts = []
    for impl, fw in frameworks.items():
        rt = fw.get("runtime") or {}
        if impl == "numbaconv":
            parts.append(f"numba {rt.get('num_threads')} ({rt.get('threading_layer')})")
        elif impl == "tensorflow":
            parts.append(f"TF intra-op {rt.get('intra_op_threads')} (0 = all), "
                         f"oneDNN {rt.get('onednn_enabled')}")
        elif impl in ("torch", "torchcl"):
            parts.append(f"{impl} {rt.get('num_threads')}")
        elif impl == "reference" and rt.get("blas"):
            parts.append("BLAS " + ",".join(f"{b['internal_api']} {b['num_threads']}" for b in rt["blas"]))
    return "; ".join(parts)


def start_workers(workers, order, args, tmp, outputs, numba_cache, frameworks):
    """Start one serving worker per available implementation, into ``workers`` (in order)."""
    for k, impl in enumerate(order, 1):
        if not available(impl):
            frameworks[impl] = {"status": f"not installed ({FRAMEWORK_MODULE[impl]})"}
            progress(f"[{k}/{len(order)}] {impl}: not installed, skipped")
            continue
        cold = impl == "numbaconv" and numba_cache
        progress(f"[{k}/{len(order)}] {impl}: starting its process"
                 + (" (empty Numba cache: first calls compile)" if cold else ""))
        t0 = time.perf_counter()
        try:
            w = Worker(impl, args, tmp, outputs, numba_cache)
        except WorkerDied as err:
            frameworks[impl] = {"status": f"failed to start: {err}"}
            continue
        workers[impl] = w
        frameworks[impl] = {"status": "ok", "import_s": w.ready["import_s"],
                            "start_s": time.perf_counter() - t0, "errors": []}


def check_phase(workers, op_ids, frameworks):
    """Every op's first call, result saved and checked, in RUN_ORDER: {(impl, op): record}."""
    records = {}
    progress("checking results (first calls; numbaconv's compile here)")
    for op in op_ids:
        status = []
        for impl, w in workers.items():
            if w.dead:
                continue
            try:
                rec = w.ask({"cmd": "first", "op": op})["rec"]
            except OpFailed as err:
                frameworks[impl]["errors"].append({"op": op, "error": str(err)})
                status.append(f"{impl} FAILED")
                continue
            except WorkerDied as err:
                frameworks[impl]["status"] = f"died: {err}"
                continue
            if rec is None:
                continue
            records[(impl, op)] = rec
            status.append(f"{impl} {CHECK_WORD.get(rec.get('ok'), 'saved')}"
                          f" ({rec['first_call_ms']:.0f} ms)")
        progress(f"check {op:<16} " + ", ".join(status))
    return records


def time_phase(workers, op_ids, records, args, frameworks):
    """Op by op, the implementations take turns (rotating order) for ``args.rounds`` rounds."""
    per_turn = math.ceil(args.runs / args.rounds)
    min_time = args.min_time / args.rounds
    progress(f"timing: {args.rounds} turns per implementation and op, >= {per_turn} calls "
             f"and >= {min_time:.2f} s per turn")
    for op in op_ids:
        turn_order = [i for i in workers if (i, op) in records and records[(i, op)].get("ok") is not False]
        samples = {impl: ([], [], []) for impl in turn_order}
        for r in range(args.rounds):
            shift = r % max(len(turn_order), 1)
            for impl in turn_order[shift:] + turn_order[:shift]:
                if impl not in samples or workers[impl].dead:
                    continue
                try:
                    ans = workers[impl].ask({"cmd": "time", "op": op, "runs": per_turn,
                                             "min_time": min_time, "warmup": args.warmup})
                except (OpFailed, WorkerDied) as err:
                    frameworks[impl]["errors"].append({"op": op, "error": f"timing: {err}"})
                    del samples[impl]
                    continue
                wall, cpu, turns = samples[impl]
                wall += ans["wall"]
                cpu += ans["cpu"]
                turns.append(1e3 * sorted(ans["wall"])[len(ans["wall"]) // 2])
                time.sleep(HANDOFF_PAUSE_S)
        line = []
        for impl, (wall, cpu, turns) in samples.items():
            rec = records[(impl, op)]
            rec.update(timing.summary(wall, cpu))
            rec["turn_medians_ms"] = turns
            line.append(f"{impl} {rec['median_ms']:.3g}")
        progress(f"timed {op:<16} median ms: " + ", ".join(line))


def result_stem(args, doc, created, suffix=""):
    os.makedirs(args.out_dir, exist_ok=True)
    git = doc["git"]
    return os.path.join(args.out_dir, f"{created:%Y%m%d-%H%M%S}-{git['short']}"
                                      f"{'-dirty' if git['dirty'] else ''}{'-quick' if args.quick else ''}"
                                      f"{suffix}")


def startup_only(args, doc, t_start, created):
    """``--startup-only``: the start-up section alone, to stdout and its own JSON."""
    with tempfile.TemporaryDirectory(prefix="numbaconv-bench-") as tmp:
        doc["startup"] = startup_summary(args, tmp)
    if doc["startup"] is None:
        return 1
    doc["loadavg_end"] = os.getloadavg()
    doc["wall_s"] = time.perf_counter() - t_start
    text = "\n".join(startup_table(doc["startup"]))
    print(text)
    stem = result_stem(args, doc, created, "-startup")
    with open(stem + ".json", "w") as f:
        json.dump(dict(doc, table=text), f, indent=1)
    progress(f"done in {doc['wall_s']:.0f} s; results: {stem}.json")
    return 0


def main(argv=None):
    args = parse_args(argv)
    args.case_list = C.select(args.cases)
    t_start = time.perf_counter()
    git = timing.git_state(REPO)
    created = datetime.datetime.now().astimezone()
    doc = {
        "schema": 1, "created": created.isoformat(timespec="seconds"), "argv": sys.argv[1:],
        "quick": args.quick, "runs": args.runs, "min_time_s": args.min_time, "warmup": args.warmup,
        "git": git, "machine": timing.cpu_info(), "versions": timing.versions(),
        "threads_requested": args.threads,
    }
    if args.startup_only:
        return startup_only(args, doc, t_start, created)
    progress("measuring the machine's limits (sgemm, copy bandwidth)")
    doc["limits"] = timing.machine_limits(args.quick)
    progress(f"sgemm {doc['limits']['sgemm_gflops']:.0f} GFLOP/s, copy {doc['limits']['copy_gbps']:.1f} GB/s")

    frameworks, exit_code = {}, 0
    with tempfile.TemporaryDirectory(prefix="numbaconv-bench-") as tmp:
        C.save_inputs(tmp, args.case_list, args.quick)
        numba_cache = os.path.join(tmp, "numba-cache") if args.cold else None
        outputs = os.path.join(tmp, "outputs")
        order = [i for i in RUN_ORDER if i in args.impls]
        workers = {}
        try:
            start_workers(workers, order, args, tmp, outputs, numba_cache, frameworks)
            op_ids = C.op_ids(args.case_list)
            records = check_phase(workers, op_ids, frameworks)
            time_phase(workers, op_ids, records, args, frameworks)
            for impl, w in workers.items():
                try:
                    info = w.ask({"cmd": "info"})
                    frameworks[impl].update(runtime=info["runtime"], env=info["env"])
                except (WorkerDied, OpFailed) as err:
                    frameworks[impl]["status"] = f"failed: {err}"
                w.close()
                frameworks[impl]["log_tail"] = w.log[-10:]
        finally:  # never leave a worker behind (an interrupt, an unexpected error)
            for w in workers.values():
                if w.proc.poll() is None:
                    w.proc.kill()
                    w.proc.wait()
        rows = list(records.values())

        warm_report = None
        if "numbaconv" in workers and not workers["numbaconv"].dead:
            progress("numbaconv: start-up " + ("with the now-warm cache" if args.cold else
                     "again") + " (fresh process, first calls only)")
            warm_report = run_batch("numbaconv", args, tmp, ["--startup-only"], numba_cache, "-warm")
        nc_rows = [r for r in rows if r["impl"] == "numbaconv"]
        doc["compile"] = compile_summary(nc_rows, frameworks.get("numbaconv", {}).get("import_s"),
                                         warm_report, args.cold)
        if args.cold and "numbaconv" in workers:
            doc["startup"] = startup_summary(args, tmp)
        nc = frameworks.get("numbaconv")
        if nc is not None and (nc.get("status") != "ok" or nc.get("errors")
                               or any(r.get("ok") is False for r in nc_rows)):
            nc["wrong_ops"] = [r["op"] for r in nc_rows if r.get("ok") is False]
            exit_code = 1
        if frameworks.get("reference", {}).get("status", "ok") != "ok":
            exit_code = 1

    doc["loadavg_end"] = os.getloadavg()
    doc["frameworks"] = frameworks
    doc["threads_summary"] = threads_summary(frameworks)
    doc["case_list"] = args.case_list
    doc["by_op"] = derive(rows, doc["limits"])
    doc["wall_s"] = time.perf_counter() - t_start
    text = table(doc)
    print(text)

    stem = result_stem(args, doc, created)
    png = None if args.no_plot else plot(doc, stem + ".png")
    out = dict(doc, case_list=[c._asdict() for c in args.case_list], rows=rows, table=text, plot=png)
    del out["by_op"]
    with open(stem + ".json", "w") as f:
        json.dump(out, f, indent=1)
    progress(f"done in {doc['wall_s']:.0f} s; results: {stem}.json" + (f", plot: {png}" if png else ""))
    if exit_code:
        progress("numbaconv FAILED a correctness check or crashed: see 'check' and the JSON")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
