"""The conv shape sweep: numbaconv against the peers over layer shapes of real networks.

    python perf/sweep.py [--quick] [--match sw-resnet] [bench.py options ...]

Runs ``bench.py`` (every implementation in its own process, turns
interleaved, each result checked before it is timed) on the sweep's cases
(``cases.SWEEP``: LeNet, AlexNet, VGG, ResNet-18/50, MobileNet's pointwise
layers, U-Net-style wide planes, a DCGAN discriminator's last layer), then
summarizes, per pass (forward, backward): numbaconv / fastest peer per
shape (the peers: TensorFlow with oneDNN, PyTorch NCHW, PyTorch
channels_last), the share of shapes where numbaconv is at or below the
fastest peer, the worst ratio and numbaconv's median GFLOP/s. Writes
``<stem>-sweep.json`` (the summary; the bench's own JSON beside it has
every row) and ``<stem>-sweep.png`` (the ratio per shape, and time against
FLOPs for each system).
"""
import argparse
import json
import os
import statistics
import sys

PERF_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, PERF_DIR)

import bench  # noqa: E402
import cases as C  # noqa: E402
import impls  # noqa: E402

PASSES = ("fwd", "bwd")


def summarize(doc):
    """Per pass: one row per shape (numbaconv ms, fastest peer and its ms, ratio) and the totals."""
    by_op = {}
    for r in doc["rows"]:
        if "median_ms" in r:
            by_op.setdefault(r["op"], {})[r["impl"]] = r
    out = {}
    for pass_ in PASSES:
        rows = []
        for case in doc["case_list"]:
            group = by_op.get(f"{case['name']}.{pass_}", {})
            peers = {i: r["median_ms"] for i, r in group.items() if i in impls.PEERS}
            nc = group.get("numbaconv")
            if nc is None or not peers:
                continue
            best = min(peers, key=peers.get)
            rows.append({
                "case": case["name"], "title": case["title"], "flops": nc["flops"],
                "numbaconv_ms": nc["median_ms"], "best_peer": best, "best_peer_ms": peers[best],
                "ratio": nc["median_ms"] / peers[best], "numbaconv_gflops": nc["gflops"],
                "ms": {i: r["median_ms"] for i, r in group.items()},
            })
        ratios = [r["ratio"] for r in rows]
        out[pass_] = {
            "rows": rows,
            "shapes": len(rows),
            "win_rate": sum(q <= 1.0 for q in ratios) / len(rows) if rows else None,
            "worst_ratio": max(ratios) if rows else None,
            "worst_case": max(rows, key=lambda r: r["ratio"])["case"] if rows else None,
            "median_ratio": statistics.median(ratios) if rows else None,
            "median_gflops": statistics.median(r["numbaconv_gflops"] for r in rows) if rows else None,
        }
    return out


def text(summary, limits):
    lines = [f"conv shape sweep (machine: sgemm {limits['sgemm_gflops']:.0f} GFLOP/s, "
             f"copy {limits['copy_gbps']:.1f} GB/s)"]
    for pass_, s in summary.items():
        lines.append(f"\n{pass_}: numbaconv / fastest peer per shape (<= 1: numbaconv at or ahead)")
        lines.append(f"  {'case':44s} {'numbaconv':>10s} {'best peer':>10s} {'':10s} {'ratio':>6s}"
                     f" {'GFLOP/s':>8s}")
        for r in s["rows"]:
            lines.append(f"  {r['case']:44s} {r['numbaconv_ms']:10.3f} {r['best_peer_ms']:10.3f} "
                         f"{impls.TITLES[r['best_peer']]:10s} {r['ratio']:6.2f} "
                         f"{r['numbaconv_gflops']:8.1f}")
        if s["shapes"]:
            lines.append(f"  {pass_}: {s['shapes']} shapes; at or below the fastest peer on "
                         f"{100 * s['win_rate']:.0f}%; median ratio {s['median_ratio']:.2f}; worst "
                         f"{s['worst_ratio']:.2f} ({s['worst_case']}); numbaconv median "
                         f"{s['median_gflops']:.0f} GFLOP/s")
    return "\n".join(lines)


def plot(summary, doc, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(16, 12))
    for col, pass_ in enumerate(PASSES):
        rows = summary[pass_]["rows"]
        ax = axes[0, col]
        ys = range(len(rows))
        ax.barh(ys, [r["ratio"] for r in rows],
                color=["#55a868" if r["ratio"] <= 1 else "#c44e52" for r in rows])
        ax.axvline(1.0, color="black", lw=1)
        ax.set_yticks(list(ys), [r["case"][3:] for r in rows], fontsize=6)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_title(f"{pass_}: numbaconv / fastest peer (green: numbaconv at or ahead)")
        ax = axes[1, col]
        for impl in bench.TABLE_ORDER:
            pts = [(r["flops"], r["ms"][impl]) for r in rows if impl in r["ms"]]
            if pts:
                ax.loglog(*zip(*sorted(pts)), "o-", ms=3, lw=0.8, label=impls.TITLES[impl])
        ax.set_xlabel("FLOPs per call")
        ax.set_ylabel("median ms")
        ax.set_title(f"{pass_}: time against work")
        ax.legend(fontsize=8)
    fig.suptitle(f"conv shape sweep, {doc['git']['short']}, {doc['machine'].get('model', '')}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--match", default="sw-", help="run the sweep cases whose name starts with this")
    p.add_argument("--out-dir", default=os.path.join(PERF_DIR, "results"))
    args, rest = p.parse_known_args(argv)
    names = [c.name for c in C.SWEEP if c.name.startswith(args.match)]
    if not names:
        raise SystemExit(f"no sweep case starts with {args.match!r}")
    impl_args = [] if "--impls" in rest else ["--impls", "reference", "numbaconv", "tensorflow",
                                              "torch", "torchcl"]
    code = bench.main(["--cases", *names, "--out-dir", args.out_dir, "--no-cold", *impl_args,
                       *rest])
    newest = max((f for f in os.listdir(args.out_dir) if f.endswith(".json")
                  and not f.endswith("-sweep.json")),
                 key=lambda f: os.path.getmtime(os.path.join(args.out_dir, f)))
    stem = os.path.join(args.out_dir, newest[:-len(".json")])
    with open(stem + ".json") as f:
        doc = json.load(f)
    summary = summarize(doc)
    print(text(summary, doc["limits"]))
    with open(stem + "-sweep.json", "w") as f:
        json.dump({"bench_json": stem + ".json", "limits": doc["limits"], "git": doc["git"],
                   "summary": summary}, f, indent=1)
    png = plot(summary, doc, stem + "-sweep.png")
    bench.progress(f"sweep summary: {stem}-sweep.json, plot: {png}")
    return code


if __name__ == "__main__":
    sys.exit(main())
