"""The store: one JSON line per (commit, run, round), and what the page reads from it.

A line holds what one fresh worker process measured for one commit in one
round of one run: ``ms`` is each op's median over ``runs`` calls on the run's
clock (compare.py's CPU clock by default), ``wall_ms`` the wall-clock median
beside it. ``machine`` and ``env`` make the series: results from another CPU,
another core count, other NumPy/Numba/Python versions, thread count, clock or
size never share a curve. Steps between two commits are judged only on the
rounds of a run that timed both, interleaved (compare.py's rule: a figure
from another run is context, never a comparison).
"""
import itertools
import json
import os
from collections import defaultdict

import compare
import numpy as np

KEY = ("commit", "run", "round")


def record_key(rec):
    return tuple(rec[k] for k in KEY)


def load(path):
    """The records of a store (an absent file is an empty store)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def append(path, records):
    """Append the records whose (commit, run, round) is not stored yet; returns how many."""
    seen = {record_key(r) for r in load(path)}
    new = []
    for rec in records:
        if record_key(rec) not in seen:
            seen.add(record_key(rec))
            new.append(rec)
    if new:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "a") as f:
            for rec in new:
                f.write(json.dumps(rec, sort_keys=True) + "\n")
    return len(new)


def series_id(rec):
    return json.dumps([rec["machine"], rec["env"]], sort_keys=True)


def series_label(rec):
    m, e = rec["machine"], rec["env"]
    return (f"{m['cpu']} ({m['cpus']} CPUs) · Python {e['python']}, NumPy {e['numpy']}, "
            f"Numba {e['numba']} · {e['threads']} threads ({e['threading_layer']}) · "
            f"{e['clock']} clock · {e['size']} size")


def by_series(records):
    """{series id: its records}, the series with the newest run first."""
    groups = defaultdict(list)
    for rec in records:
        groups[series_id(rec)].append(rec)
    return dict(sorted(groups.items(), key=lambda kv: max(r["run"] for r in kv[1]), reverse=True))


def commits_in_order(records):
    """[(sha, subject)] oldest first: by depth in history (``generation``), then commit time."""
    seen = {}
    for rec in records:
        seen.setdefault(rec["commit"], rec)
    ordered = sorted(seen.values(), key=lambda r: (r["generation"], r["committed"]))
    return [(r["commit"], r["subject"]) for r in ordered]


def points(records, op):
    """{sha: spread of the per-process medians}: median, quartiles, min, max, sample count."""
    samples = defaultdict(list)
    for rec in records:
        if op in rec["ms"]:
            samples[rec["commit"]].append(rec["ms"][op])
    out = {}
    for sha, values in samples.items():
        q = np.quantile(values, [0, 0.25, 0.5, 0.75, 1])
        out[sha] = {"min": q[0], "q1": q[1], "median": q[2], "q3": q[3], "max": q[4],
                    "n": len(values)}
    return out


def paired_rounds(records, sha_a, sha_b, op):
    """(A, B) times of the rounds in which one run timed both commits."""
    by_round = defaultdict(dict)
    for rec in records:
        if rec["commit"] in (sha_a, sha_b) and op in rec["ms"]:
            by_round[(rec["run"], rec["round"])][rec["commit"]] = rec["ms"][op]
    return [(t[sha_a], t[sha_b]) for t in by_round.values() if sha_a in t and sha_b in t]


def steps(records, op, threshold=0.10, confidence=0.95):
    """compare.py's verdict for each commit against the one before it (None: never timed together).

    Each entry: ``commit``, ``previous`` and, when some run timed both
    commits interleaved in >= 2 rounds, compare.judge's ``ratio``, ``ci``,
    ``rounds`` and ``verdict``.
    """
    order = [sha for sha, _ in commits_in_order(records)]
    rng = np.random.default_rng(0)
    out = []
    for prev, cur in itertools.pairwise(order):
        pairs = paired_rounds(records, prev, cur, op)
        entry = {"commit": cur, "previous": prev}
        if len(pairs) >= 2:
            entry.update(compare.judge(pairs, threshold, confidence, rng))
        out.append(entry)
    return out
