"""Tests of the history tooling (python -m perf.history): the store, the steps, the commit
selection, the bisect's halving, and the page in a real headless Chromium.

Run with ``pytest perf/test_history.py``. The browser test needs Chromium from
the system's packages (``apt-get install chromium``) and FAILS without it. Its
screenshot is kept at ``perf/results/test-history-page.png`` (path printed).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

PERF = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(PERF)
# perf/'s modules import each other by plain name; tests/ has a cases.py too.
for _name in ("cases", "timing", "impls", "worker", "compare"):
    _mod = sys.modules.get(_name)
    if _mod is not None and os.path.dirname(getattr(_mod, "__file__", "") or "") != PERF:
        del sys.modules[_name]
sys.path[:0] = [PERF, REPO]  # perf/'s modules by plain name; perf.history as a package

import cases as C

from perf.history import browser, page, store
from perf.history.__main__ import first_bad, select_commits

MACHINE = {"cpu": "Test CPU", "cpus": 2}
ENV = {"python": "3.11", "numpy": "2", "numba": "0.68", "llvmlite": "0.50", "threads": 2,
       "threading_layer": "omp", "clock": "cpu", "size": "quick"}


def fake_records(n_commits=5, step_at=3, factor=1.6, op_step="conv.bwd", rounds=6, run="run1",
                 machine=MACHINE, noise=0.03, seed=0):
    """Interleaved rounds over ``n_commits``: every op at 1 ms x noise, ``op_step`` ``factor``
    times slower from commit ``step_at`` on."""
    rng = np.random.default_rng(seed)
    records = []
    for r in range(rounds):
        load = 1 + 0.3 * rng.random()  # a load change between rounds hits every commit alike
        for i in range(n_commits):
            sha = f"{i:x}" * 40
            ms = {op: load * (factor if op == op_step and i >= step_at else 1.0)
                  * (1 + noise * rng.standard_normal()) for op in C.op_ids()}
            records.append({"commit": sha, "subject": f"commit {i}", "generation": i,
                            "committed": f"2026-01-0{i + 1}T00:00:00", "run": run, "round": r,
                            "machine": machine, "env": ENV, "ms": ms, "wall_ms": ms})
    return records


# ------------------------------------------------------------------ the store


def test_append_adds_samples_and_never_duplicates(tmp_path):
    path = tmp_path / "r.jsonl"
    first = fake_records(rounds=2)
    assert store.append(path, first) == len(first)
    assert store.append(path, first) == 0  # the same samples again: nothing added
    rerun = fake_records(rounds=2, run="run2")  # the same commits, a new run: new samples
    assert store.append(path, rerun) == len(rerun)
    lines = path.read_text().splitlines()
    assert len(lines) == len(first) + len(rerun)
    assert len({store.record_key(json.loads(line)) for line in lines}) == len(lines)


def test_another_machine_is_another_series():
    here = fake_records(rounds=2)
    there = fake_records(rounds=2, run="run2", machine={"cpu": "Other CPU", "cpus": 8})
    groups = store.by_series(here + there)
    assert len(groups) == 2
    assert sorted(len(v) for v in groups.values()) == [len(here), len(there)]
    env_changed = [dict(r, env=dict(r["env"], numba="0.69")) for r in fake_records(run="run3")]
    assert len(store.by_series(here + env_changed)) == 2


def test_steps_name_the_commit_of_a_planted_step():
    records = fake_records(step_at=3, factor=1.6)
    steps = store.steps(records, "conv.bwd")
    verdicts = {s["commit"][:1]: s["verdict"] for s in steps}
    assert verdicts == {"1": "same", "2": "same", "3": "REGRESSION", "4": "same"}
    assert 1.4 < steps[2]["ratio"] < 1.8
    assert all(s["verdict"] == "same" for s in store.steps(records, "conv.fwd"))


def test_steps_need_both_commits_timed_in_one_run():
    # Commit 1 timed only in run1, commit 2 only in run2: a 2x difference between
    # runs is context, never a verdict.
    a = [r for r in fake_records(n_commits=2, run="run1") if r["commit"][0] == "0"]
    b = [r for r in fake_records(n_commits=2, step_at=1, factor=2.0, run="run2")
         if r["commit"][0] == "1"]
    (step,) = store.steps(a + b, "conv.bwd")
    assert "verdict" not in step


def test_points_give_the_spread_over_processes():
    records = fake_records(n_commits=1, rounds=5, noise=0.0)
    p = store.points(records, "conv.fwd")["0" * 40]
    assert p["n"] == 5 and p["min"] <= p["q1"] <= p["median"] <= p["q3"] <= p["max"]
    assert p["max"] > p["min"]  # the rounds' load changes show as spread


# ------------------------------------------------------------------ commits and bisect


@pytest.fixture
def repo(tmp_path):
    """Six commits; the package appears in the second."""
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    for i in range(6):
        if i == 1:
            (tmp_path / "numbaconv").mkdir()
            (tmp_path / "numbaconv" / "__init__.py").write_text("")
        (tmp_path / "f.txt").write_text(str(i))
        git("add", "-A")
        git("commit", "-q", "-m", f"c{i}")
    return str(tmp_path)


def subjects(repo, shas):
    return [subprocess.run(["git", "-C", repo, "log", "-1", "--format=%s", s], capture_output=True,
                           text=True, check=True).stdout.strip() for s in shas]


def test_select_commits_ranges_every_and_limit(repo):
    assert subjects(repo, select_commits(repo, ["HEAD~5..HEAD"])) == ["c1", "c2", "c3", "c4", "c5"]
    # c0 has no package: skipped even when named
    assert subjects(repo, select_commits(repo, ["HEAD~5", "HEAD"])) == ["c5"]
    assert subjects(repo, select_commits(repo, ["HEAD~5..HEAD"], every=2)) == ["c1", "c3", "c5"]
    assert subjects(repo, select_commits(repo, ["HEAD~5..HEAD"], limit=2)) == ["c4", "c5"]
    assert subjects(repo, select_commits(repo, ["HEAD", "HEAD~2", "HEAD~2"])) == ["c3", "c5"]


@pytest.mark.parametrize("culprit", range(7))
def test_first_bad_names_the_first_slow_commit(culprit):
    commits = list(range(7))
    asked = []

    def is_bad(c):
        asked.append(c)
        return c >= culprit

    assert first_bad(commits, is_bad) == culprit
    assert len(asked) <= 3  # halving: log2(7) rounded up


# ------------------------------------------------------------------ the page


def test_page_is_self_contained(tmp_path):
    records = fake_records()
    path = tmp_path / "index.html"
    store.append(tmp_path / "r.jsonl", records)
    page.write(tmp_path / "r.jsonl", path)
    text = path.read_text()
    for link in ('src="http', "src='http", 'href="http', "href='http", "@import"):
        assert link not in text  # the network is closed: nothing may load from elsewhere
    assert "REGRESSION" in text and "3333333" in text  # the step, named by commit, in the table


def test_page_renders_every_op_in_headless_chromium(tmp_path):
    records = fake_records() + fake_records(run="run2", machine={"cpu": "Other", "cpus": 4}, seed=1)
    path = tmp_path / "index.html"
    path.write_text(page.render(records))
    os.makedirs(os.path.join(PERF, "results"), exist_ok=True)
    png = os.path.join(PERF, "results", "test-history-page.png")
    if os.path.exists(png):
        os.remove(png)
    problems, plots = browser.check(str(path), C.op_ids(), png,
                                    expected={op: 10 for op in C.op_ids()})
    print(f"\nscreenshot of the history page: {png}")
    assert problems == []
    assert len(plots) == 2 * len(C.op_ids())
    for p in plots:
        assert p["circles"] == 2 * 5  # two series, five commits
        expected = ["3" * 40] * 2 if p["op"] == "conv.bwd" else []  # the step, in both series
        assert p["steps"] == expected, p
    from matplotlib.image import imread
    pixels = imread(png)
    assert pixels.shape[0] > 1000 and pixels.std() > 0.05  # not a blank page


def test_check_page_cli_counts_every_commit(tmp_path):
    store.append(tmp_path / "r.jsonl", fake_records(n_commits=3))
    page.write(tmp_path / "r.jsonl", tmp_path / "index.html")
    proc = subprocess.run([sys.executable, "-m", "perf.history", "check-page",
                           str(tmp_path / "index.html")], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{2 * len(C.op_ids())} plots rendered" in proc.stdout
    # A page whose script drops a commit's dots fails the check.
    text = (tmp_path / "index.html").read_text().replace("if (!p) return;", "if (!p || i === 1) return;")
    (tmp_path / "index.html").write_text(text)
    proc = subprocess.run([sys.executable, "-m", "perf.history", "check-page",
                           str(tmp_path / "index.html")], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "2 dots, 3 expected" in proc.stdout


def test_a_broken_script_is_reported(tmp_path):
    text = page.render(fake_records()).replace("D.ops.forEach", "D.ops.nonexistent")
    path = tmp_path / "broken.html"
    path.write_text(text)
    problems, _ = browser.check(str(path), C.op_ids())
    assert any("script error" in p for p in problems)
