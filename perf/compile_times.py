"""Where numbaconv's cold compile time goes: per warmup step and per kernel signature.

    python perf/compile_times.py [--dtypes float32] [--json out.json]

Runs ``numbaconv.warmup``'s steps in this process with an empty Numba cache
of its own (a temporary ``NUMBA_CACHE_DIR``, set before Numba is imported),
and listens to Numba's compile events (``numba.core.event``): for every
compiled signature, the wall time of its compile including and excluding the
kernels compiled inside it (callees are compiled, and cached, on their own),
and the part of that spent holding the LLVM lock (optimization and machine
code; the rest is typing, parfor passes and lowering to LLVM IR). Prints a
table, longest first, then where LLVM's time went by kind of code library
(CPU seconds): a parallel kernel's own library, its parfor loop body and
the body's two wrappers (``numbaconv._numba`` keeps the last three from
being optimized on their own or compiled to machine code: their code is
optimized once, in the kernel's library), serial helpers, and Numba's own
implementations (np.empty and the like); the rest of the CPU time is
Numba's Python side (typing, parfor passes, lowering). The times include
whatever load the machine has: quote the load average with them (printed).
"""
import argparse
import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    """Run the warmup steps with compile listeners installed; print (and save) the tables."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dtypes", default="float32")
    p.add_argument("--json")
    args = p.parse_args(argv)
    cache = tempfile.mkdtemp(prefix="numbaconv-compile-times-")
    os.environ["NUMBA_CACHE_DIR"] = cache
    sys.path.insert(0, REPO)

    from numba.core import event

    from numbaconv import _warmup

    records, stack = [], []  # stack: [name, start, llvm seconds, child seconds]

    class Compile(event.Listener):
        def on_start(self, ev):
            d = ev.data["dispatcher"]
            stack.append([d.py_func.__name__, time.perf_counter(), 0.0, 0.0,
                          ",".join(str(a) for a in ev.data["args"])])

        def on_end(self, ev):
            name, start, llvm, child, sig = stack.pop()
            total = time.perf_counter() - start
            if stack:
                stack[-1][3] += total
            records.append({"kernel": name, "signature": sig, "inclusive_s": total,
                            "exclusive_s": total - child, "llvm_s": llvm})

    class Llvm(event.Listener):
        def on_start(self, ev):
            self.t0 = time.perf_counter()

        def on_end(self, ev):
            if stack:
                stack[-1][2] += time.perf_counter() - self.t0

    event.register("numba:compile", Compile())
    event.register("numba:llvm_lock", Llvm())
    libraries = _library_times(_warmup)
    steps = []
    load0 = os.getloadavg()
    cpu0 = time.process_time()
    for dtype in args.dtypes.split(","):
        for label, step in _warmup.STEPS:
            t0 = time.perf_counter()
            import numbaconv

            step(numbaconv, getattr(__import__("numpy"), dtype))
            steps.append({"dtype": dtype, "step": label, "seconds": time.perf_counter() - t0})
    cpu = time.process_time() - cpu0
    load1 = os.getloadavg()
    print(f"load average before {load0[0]:.2f}, after {load1[0]:.2f} (1 min)")
    print(f"{'seconds':>8}  step")
    for s in steps:
        print(f"{s['seconds']:8.2f}  {s['dtype']} {s['step']}")
    print(f"{sum(s['seconds'] for s in steps):8.2f}  all steps")
    print()
    print(f"{'excl s':>7}{'llvm s':>8}{'incl s':>8}  kernel (signature)")
    for r in sorted(records, key=lambda r: -r["exclusive_s"]):
        sig = r["signature"] if len(r["signature"]) < 90 else r["signature"][:87] + "..."
        print(f"{r['exclusive_s']:7.2f}{r['llvm_s']:8.2f}{r['inclusive_s']:8.2f}  {r['kernel']} ({sig})")
    print(f"{sum(r['exclusive_s'] for r in records):7.2f}{sum(r['llvm_s'] for r in records):8.2f}"
          f"{'':8}  all {len(records)} compiled signatures")
    print()
    print(f"{'O3 s':>7}{'code s':>8}{'IR s':>7}{'count':>7}  LLVM work by kind of library (CPU)")
    llvm = 0.0
    for kind, row in sorted(libraries.items(), key=lambda kv: -sum(kv[1][:3])):
        print(f"{row[0]:7.2f}{row[1]:8.2f}{row[2]:7.2f}{row[3]:7d}  {kind}")
        llvm += sum(row[:3])
    print(f"{llvm:7.2f} s LLVM of {cpu:.2f} s CPU; the rest is Numba's Python side (typing, parfors, lowering)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load": [load0, load1], "steps": steps, "kernels": records, "cpu_s": cpu,
                       "libraries": libraries}, f, indent=1)
    return 0


def _library_times(warmup):
    """CPU seconds of LLVM work per kind of code library.

    {kind: [O3, machine code, IR parsing and function passes, libraries finalized]}.
    """
    from numba.core import codegen

    dispatchers = warmup.kernels()
    parallel = {d.py_func.__name__ for d in dispatchers.values() if d.targetoptions.get("parallel")}
    ours = {d.py_func.__name__ for d in dispatchers.values()}

    def kind(name):
        if name == "parallelgufuncwrapper" or "_GufuncWrapper object" in name:
            return "parfor wrappers (gufunc, parallel launcher)"
        if "__numba_parfor_gufunc" in name:
            return "parfor loop bodies"
        if name in parallel:
            return "parallel kernels (linking all of the above)"
        return "serial helpers" if name in ours else "Numba's implementations (np.empty, min, ...)"

    rows: dict = {}

    def timed(method, column):
        original = getattr(codegen.JITCodeLibrary, method)

        def run(self, *args, **kwargs):
            t0 = time.process_time()
            try:
                return original(self, *args, **kwargs)
            finally:
                row = rows.setdefault(kind(self.name), [0.0, 0.0, 0.0, 0])
                row[column] += time.process_time() - t0
                row[3] += column == 0
        setattr(codegen.JITCodeLibrary, method, run)

    timed("_optimize_final_module", 0)
    timed("_finalize_specific", 1)
    timed("add_ir_module", 2)
    return rows


if __name__ == "__main__":
    sys.exit(main())
