"""Where numbaconv's cold compile time goes: per warmup step and per kernel signature.

    python perf/compile_times.py [--dtypes float32] [--json out.json]

Runs ``numbaconv.warmup``'s steps in this process with an empty Numba cache
of its own (a temporary ``NUMBA_CACHE_DIR``, set before Numba is imported),
and listens to Numba's compile events (``numba.core.event``): for every
compiled signature, the wall time of its compile including and excluding the
kernels compiled inside it (callees are compiled, and cached, on their own),
and the part of that spent holding the LLVM lock (optimization and machine
code; the rest is typing, parfor passes and lowering to LLVM IR). Prints a
table, longest first. The times include whatever load the machine has:
quote the load average with them (printed).
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
    steps = []
    load0 = os.getloadavg()
    for dtype in args.dtypes.split(","):
        for label, step in _warmup.STEPS:
            t0 = time.perf_counter()
            import numbaconv

            step(numbaconv, getattr(__import__("numpy"), dtype))
            steps.append({"dtype": dtype, "step": label, "seconds": time.perf_counter() - t0})
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
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load": [load0, load1], "steps": steps, "kernels": records}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
