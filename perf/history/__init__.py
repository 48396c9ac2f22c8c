"""Results kept per commit: ``python -m perf.history run | page | bisect | check-page``.

The store is ``results.jsonl`` here (one JSON line per commit, run and
round), the page ``index.html`` beside it. The timing, the exports with their
own Numba caches and the statistics are compare.py's; this package only
loops them over commits, keeps what they measure and draws it.
"""
import os
import sys

HISTORY_DIR = os.path.dirname(os.path.abspath(__file__))
PERF_DIR = os.path.dirname(HISTORY_DIR)
REPO = os.path.dirname(PERF_DIR)
STORE = os.path.join(HISTORY_DIR, "results.jsonl")
PAGE = os.path.join(HISTORY_DIR, "index.html")

# perf/'s scripts import each other by plain name (``import cases``); a
# module of that name imported from elsewhere (tests/ has a cases.py) would
# shadow them, so perf/ goes first on the path.
if sys.path[:1] != [PERF_DIR]:
    sys.path.insert(0, PERF_DIR)
