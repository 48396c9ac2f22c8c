"""Open the history page in headless Chromium: did every op's plot render? Take a screenshot.

Chromium comes from the system's packages (Debian: ``apt-get install
chromium``). Missing, it is an error, never a skip: a page nobody checked
is not a tested page.
"""
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless, no sandbox (CI runs as root), and nothing that reaches for the network.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")


def chromium():
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("no Chromium found (tried: " + ", ".join(CANDIDATES) + "); install it, "
                       "e.g. apt-get install -y chromium")


def _run(page, *flags, timeout=120):
    with tempfile.TemporaryDirectory(prefix="history-chromium-") as profile:
        proc = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *flags,
                               "file://" + os.path.abspath(page)],
                              capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exit code {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


class _Plots(HTMLParser):
    """Per plot SVG: its op, its kind, the dots drawn; and the page's error text."""

    def __init__(self):
        super().__init__()
        self.plots, self.errors, self.plotted, self._svg, self._in_errors = [], "", None, None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.plotted = a.get("data-plotted")
        elif tag == "svg" and a.get("class") == "plot":
            self._svg = {"op": a.get("data-op"), "kind": a.get("data-kind"),
                         "points": int(a.get("data-points", 0)), "circles": 0, "steps": []}
            self.plots.append(self._svg)
        elif tag == "circle" and self._svg is not None:
            self._svg["circles"] += 1
        elif tag == "line" and self._svg is not None and a.get("class") == "step":
            self._svg["steps"].append(a.get("data-commit"))
        self._in_errors = a.get("id") == "errors"

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg = None
        self._in_errors = False

    def handle_data(self, data):
        if self._in_errors:
            self.errors += data


def rendered_plots(page):
    """The page's DOM after its script ran: [{op, kind, points, circles, steps}], errors, plotted."""
    parser = _Plots()
    parser.feed(_run(page, "--dump-dom"))
    return parser.plots, parser.errors.strip(), parser.plotted


def screenshot(page, png, width=1400, height=2600):
    _run(page, f"--screenshot={os.path.abspath(png)}", f"--window-size={width},{height}")
    if not os.path.exists(png):
        raise RuntimeError(f"chromium wrote no screenshot to {png}")
    return png


def check(page, ops, png=None, expected=None):
    """Problems with the rendered page (empty: every op has a time and a rate plot with dots,
    ``expected[op]`` of them when given)."""
    plots, errors, plotted = rendered_plots(page)
    problems = [f"script error on the page: {errors}"] if errors else []
    if plotted != str(len(ops)):
        problems.append(f"the script finished {plotted!r} plots of {len(ops)} ops")
    for op in ops:
        for kind in ("time", "rate"):
            found = [p for p in plots if p["op"] == op and p["kind"] == kind]
            if not found or found[0]["circles"] == 0 or found[0]["circles"] != found[0]["points"]:
                problems.append(f"{op} {kind}: no plot with dots rendered ({found})")
            elif expected and found[0]["circles"] != expected[op]:
                problems.append(f"{op} {kind}: {found[0]['circles']} dots, {expected[op]} expected")
    if png:
        screenshot(page, png)
    return problems, plots
