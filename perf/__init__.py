"""numbaconv's benchmark harness (not part of the installed package).

The scripts run as files (``python perf/bench.py``, ``python perf/compare.py
A B``) and import each other by plain name (``import cases``); this file
only lets ``python -m perf.history`` find the history tool.
"""
