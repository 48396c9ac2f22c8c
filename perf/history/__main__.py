"""Performance history over commits: run, page, bisect, check-page.

    python -m perf.history run [REVS...] [--every N] [--tags] [--max 10] [--rounds 4]
    python -m perf.history page
    python -m perf.history bisect A B --op conv.bwd
    python -m perf.history check-page perf/history/index.html --screenshot FILE.png

``run`` times every commit of REVS (``A..B`` ranges and single revisions;
default: the commits since perf/ landed, the newest ``--max``) the way
compare.py times two: each commit exported with ``git archive`` into its own
tree with its own Numba cache, compiled and checked first (every commit must
compute what the newest one computes), then rounds of one fresh process per
commit, the order reversed every round, so that load drift hits every commit.
Each process's per-op medians go to the store as one line; the page is
rewritten. It never fails on timing: exit 0, or 2 when a commit crashed or
computed different results (those are not stored).

``bisect`` finds the first commit between A (good) and B (bad) that makes
``--op`` slower, by running compare.py (interleaved A/B, bootstrap verdict)
between A and the commit in the middle, halving the range until one commit
is left. Only exports are used: the working tree and ``.git`` are untouched.
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from types import SimpleNamespace

# perf/'s own modules, by plain name: the package's __init__ put perf/ on the path.
import cases as C
import compare
import timing

from . import PAGE, REPO, STORE, browser, page, store


def say(msg):
    print(f"history: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ which commits


def git(repo, *args):
    return compare.git(repo, *args)


def has_package(repo, sha):
    return subprocess.run(["git", "-C", repo, "cat-file", "-e", f"{sha}:numbaconv/__init__.py"],
                          capture_output=True, check=False).returncode == 0


def default_revs(repo):
    """The commits since perf/ landed, as a range from the first commit that has it."""
    first = git(repo, "log", "--reverse", "--format=%H", "--", "perf/compare.py").split()
    if not first:
        raise SystemExit("history: no commit has perf/compare.py: give a range")
    parent = subprocess.run(["git", "-C", repo, "rev-parse", "--verify", "--quiet", first[0] + "^"],
                            capture_output=True, text=True, check=False).stdout.strip()
    return [f"{parent}..HEAD"] if parent else [first[0], f"{first[0]}..HEAD"]


def select_commits(repo, revs, every=1, tags=False, limit=10):
    """Shas oldest first: the revisions and ranges, or the tags; every Nth counted back from
    the newest (which is always kept), the newest ``limit``; commits without the package dropped."""
    shas = []
    if tags:
        names = git(repo, "tag", "--merged", "HEAD").split()
        shas = [git(repo, "rev-parse", f"{t}^{{commit}}") for t in names]
    for rev in revs or ([] if tags else default_revs(repo)):
        if ".." in rev:
            shas += git(repo, "rev-list", "--reverse", "--topo-order", rev).split()
        else:
            shas.append(compare.resolve(repo, rev)[1])
    shas = [s for i, s in enumerate(shas) if s not in shas[:i]]
    shas.sort(key=lambda s: (generation(repo, s), int(git(repo, "log", "-1", "--format=%ct", s))))
    kept = [s for s in shas if has_package(repo, s)]
    for s in set(shas) - set(kept):
        say(f"{s[:10]} has no numbaconv package: skipped")
    kept = kept[::-1][::max(every, 1)][::-1]
    return kept[-limit:] if limit else kept


def generation(repo, sha):
    """Commits in sha's history (its depth): orders commits of one line of history."""
    return int(git(repo, "rev-list", "--count", sha))


# ------------------------------------------------------------------ run


def series_keys(report):
    """(machine, env) of a worker report: what makes a series."""
    cpu = timing.cpu_info()
    versions = timing.versions(("numpy", "numba", "llvmlite"))
    runtime = report.get("runtime") or {}
    machine = {"cpu": cpu["cpu_model"], "cpus": cpu["usable_cpus"]}
    return machine, {
        "python": cpu["python"], "numpy": versions["numpy"], "numba": versions["numba"],
        "llvmlite": versions["llvmlite"], "threads": runtime.get("num_threads"),
        "threading_layer": runtime.get("threading_layer")}


def cmd_run(args):
    repo = os.path.abspath(args.repo)
    shas = select_commits(repo, args.revs, args.every, args.tags, args.max)
    if not shas:
        raise SystemExit("history: no commit to run")
    args.impl, args.case_list = "numbaconv", C.select(args.cases)
    size = "quick" if args.quick else "full"
    run_id = datetime.datetime.now().strftime("%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]
    say(f"run {run_id}: {len(shas)} commits, {size} size, {args.rounds} rounds, {args.clock} clock")
    tmp = tempfile.mkdtemp(prefix="numbaconv-history-")
    failed, added = {}, 0
    try:
        C.save_inputs(tmp, args.case_list, args.quick)
        sides, meta = [], {}
        for sha in shas:
            subject = git(repo, "log", "-1", "--format=%s", sha)
            side = compare.Side(sha[:10], f"{sha[:10]} {subject[:50]!r}", os.path.join(tmp, sha), tmp)
            compare.export(repo, sha, side.root)
            meta[sha] = {"subject": subject, "generation": generation(repo, sha),
                         "committed": git(repo, "log", "-1", "--format=%cI", sha)}
            sides.append((sha, side))
        # Compile into each commit's own cache; all must compute what the newest computes.
        newest = sides[-1][1]
        for sha, side in reversed(sides):
            say(f"{side.label}: compiling (own Numba cache) and computing results")
            try:
                report = compare.run(side, args, tmp, ["--startup-only", "--outputs", side.outputs],
                                     "warmup")
            except SystemExit:
                failed[sha] = "crashed"
                report = None
            if side is newest and (report is None or report["errors"]):
                raise SystemExit(f"history: the newest commit {sha[:10]} failed: it is the "
                                 "reference every other commit must agree with")
            if report is None:
                continue
            if report["errors"]:
                failed[sha] = f"ops failed: {[e['op'] for e in report['errors']]}"
            elif side is not newest:
                differ = compare.outputs_differ(newest, side, "numbaconv")
                if differ:
                    failed[sha] = f"results differ from {newest.name}'s: {differ}"
            if side is newest:
                machine, env = series_keys(report)
                env.update(clock=args.clock, size=size)
        for sha, why in failed.items():
            say(f"{sha[:10]}: {why}: not timed")
        sides = [(sha, side) for sha, side in sides if sha not in failed]
        key = "cpu_median_ms" if args.clock == "cpu" else "median_ms"
        for r in range(args.rounds):
            order = sides if r % 2 == 0 else sides[::-1]
            records = []
            for sha, side in order:
                try:
                    report = compare.run(side, args, tmp, ["--runs", str(args.runs)], f"round{r}")
                except SystemExit:
                    failed[sha] = f"crashed in round {r + 1}"
                    continue
                records.append({
                    "commit": sha, **meta[sha], "run": run_id, "round": r,
                    "machine": machine, "env": env,
                    "ms": {o["op"]: round(o[key], 5) for o in report["ops"] if key in o},
                    "wall_ms": {o["op"]: round(o["median_ms"], 5) for o in report["ops"]
                                if "median_ms" in o}})
            sides = [(sha, side) for sha, side in sides if sha not in failed]
            added += store.append(args.store, records)
            say(f"round {r + 1}/{args.rounds} done ({len(records)} commits)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"{added} lines added to {args.store}")
    if not args.no_page:
        records = page.write(args.store, args.page, args.threshold)
        say(f"page written: {args.page}")
        print(summary(records, run_id, args.threshold))
    for sha, why in failed.items():
        say(f"FAILED {sha[:10]}: {why}")
    return 2 if failed else 0


def summary(records, run_id, threshold):
    """This run's commits, each op's verdict against the commit before (informative: never an exit status)."""
    mine = [r for r in records if r["run"] == run_id]
    if not mine:
        return "nothing timed"
    series = store.by_series(records)[store.series_id(mine[0])]
    shas = {r["commit"] for r in mine}
    lines = [f"{'op':<16}{'commit':<12}{'ms':>10}  vs the commit before"]
    for op in C.op_ids():
        pts = store.points(series, op)
        for st in store.steps(series, op, threshold):
            if st["commit"] in shas and st["commit"] in pts:
                verdict = page._fmt_step(st) if "verdict" in st else "not timed together"
                lines.append(f"{op:<16}{st['commit'][:10]:<12}{pts[st['commit']]['median']:10.3f}  {verdict}")
    return "\n".join(lines)


# ------------------------------------------------------------------ bisect


def first_bad(commits, is_bad):
    """The first of ``commits`` (oldest first; the last one known bad) for which ``is_bad`` holds,
    by halving: ``is_bad`` is asked about log2(len) commits, assumed good before the step."""
    lo, hi = -1, len(commits) - 1  # commits[hi] is bad; lo = the last known good (-1: A)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if is_bad(commits[mid]):
            hi = mid
        else:
            lo = mid
    return commits[hi]


def cmd_bisect(args):
    repo = os.path.abspath(args.repo)
    if args.op not in C.op_ids():
        raise SystemExit(f"history: --op {args.op!r} is not one of {' '.join(C.op_ids())}")
    a = compare.resolve(repo, args.a)[1]
    b = compare.resolve(repo, args.b)[1]
    commits = git(repo, "rev-list", "--reverse", "--ancestry-path", f"{a}..{b}").split()
    if not commits:
        raise SystemExit(f"history: {args.b} is not a descendant of {args.a}")
    case = args.op.split(".")[0]

    def verdict(sha):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            argv = [a, sha, "--cases", case, "--rounds", str(args.rounds), "--runs", str(args.runs),
                    "--threshold", str(args.threshold), "--clock", args.clock, "--repo", repo,
                    "--json", out.name] + (["--quick"] if args.quick else [])
            say(f"compare.py {' '.join(argv[:2])} ...")
            code = compare.main(argv)
            if code == 2:
                raise SystemExit(f"history: compare.py failed on {sha[:10]} (exit 2)")
            with open(out.name) as f:
                row = next(r for r in json.load(f)["rows"] if r["op"] == args.op)
        say(f"{sha[:10]}: {args.op} B/A {row['ratio']:.3f} [{row['ci'][0]:.3f}, {row['ci'][1]:.3f}]: "
            f"{row['verdict']}")
        return row["verdict"] == "REGRESSION"

    if not verdict(b):
        print(f"{args.op}: {args.b} is not a REGRESSION against {args.a}: nothing to bisect")
        return 1
    found = first_bad(commits, verdict) if len(commits) > 1 else commits[0]
    subject = git(repo, "log", "-1", "--format=%s", found)
    print(f"first commit where {args.op} is a REGRESSION against {a[:10]}: {found} {subject}")
    return 0


# ------------------------------------------------------------------ CLI


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m perf.history", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def timing_options(q, rounds):
        q.add_argument("--rounds", type=int, default=rounds, help="processes per commit, interleaved")
        q.add_argument("--runs", type=int, default=5, help="timed calls per op in each process")
        q.add_argument("--threshold", type=float, default=0.10, help="compare.py's threshold")
        q.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="as compare.py's")
        q.add_argument("--threads", type=int)
        q.add_argument("--repo", default=REPO)

    r = sub.add_parser("run", help="time commits into the store, rewrite the page")
    r.add_argument("revs", nargs="*", help="revisions and A..B ranges (default: since perf/ landed)")
    r.add_argument("--every", type=int, default=1, help="every Nth commit, counted from the newest")
    r.add_argument("--tags", action="store_true", help="the tags reachable from HEAD")
    r.add_argument("--max", type=int, default=10, help="at most this many newest commits (0: all)")
    r.add_argument("--full", dest="quick", action="store_false",
                   help="bench.py's full sizes (default: its --quick sizes; a different series)")
    r.add_argument("--cases", nargs="*", default=[], help=f"subset of: {' '.join(C.BY_NAME)}")
    r.add_argument("--store", default=STORE)
    r.add_argument("--page", default=PAGE)
    r.add_argument("--no-page", action="store_true")
    timing_options(r, rounds=4)

    g = sub.add_parser("page", help="rewrite the page from the store")
    g.add_argument("--store", default=STORE)
    g.add_argument("--page", default=PAGE)
    g.add_argument("--threshold", type=float, default=0.10)

    b = sub.add_parser("bisect", help="the first commit after A where --op is a REGRESSION")
    b.add_argument("a", help="a good revision")
    b.add_argument("b", help="a bad revision (a descendant of A)")
    b.add_argument("--op", required=True, help=f"one of: {' '.join(C.op_ids())}")
    b.add_argument("--full", dest="quick", action="store_false", help="full sizes (default quick)")
    timing_options(b, rounds=6)

    c = sub.add_parser("check-page", help="open the page in headless Chromium; every plot drawn?")
    c.add_argument("page", nargs="?", default=PAGE)
    c.add_argument("--screenshot", help="PNG file to write")
    args = p.parse_args(argv)
    if getattr(args, "rounds", 2) < 2:
        p.error("--rounds must be >= 2 (a step needs two paired rounds)")
    return args


def cmd_page(args):
    records = page.write(args.store, args.page, args.threshold)
    print(f"{args.page}: {len(records)} results")
    return 0


def cmd_check_page(args):
    with open(args.page) as f:
        text = f.read()
    start = text.index('<script id="data" type="application/json">') + len(
        '<script id="data" type="application/json">')
    data = json.loads(text[start:text.index("</script>", start)])
    ops = data["ops"]
    # One dot per commit a series timed: the plot must show every one.
    expected = {op: sum(len(s["ops"][op]["points"]) for s in data["series"]) for op in ops}
    problems, plots = browser.check(args.page, ops, args.screenshot, expected)
    for problem in problems:
        print(f"check-page: {problem}")
    print(f"check-page: {len(plots)} plots rendered for {len(ops)} ops"
          + (f"; screenshot: {os.path.abspath(args.screenshot)}" if args.screenshot else ""))
    return 1 if problems or not ops else 0


def main(argv=None):
    args = parse_args(argv)
    return {"run": cmd_run, "page": cmd_page, "bisect": cmd_bisect,
            "check-page": cmd_check_page}[args.cmd](SimpleNamespace(**vars(args)))


if __name__ == "__main__":
    sys.exit(main())
