"""The history page: one static HTML file, data embedded, plots drawn as inline SVG by a small script.

No server, no external file, no network: the page opens from disk
(``file://``). Per op, two plots against the commits, time (the run's clock)
and rate (conv GFLOP/s, pool/LRN effective GB/s, the work counts of
cases.py), one line per series, each commit's spread over processes (min-max
whisker, quartile box, median dot), and the steps compare.py's rule calls
significant (``REGRESSION``, ``faster``) marked with their commit. Below, the
latest table of each series and every step that is not ``same``.
"""
import datetime
import html
import json
import os

import cases as C

from . import store

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def work_of(op, size):
    """(work per call, unit, divisor to the unit per ms) of ``op`` at ``size``: GFLOP/s or GB/s."""
    name, pass_ = op.split(".")
    case = C.BY_NAME[name]
    flops, nbytes = C.work(case, pass_, C.x_shape_for(case, size == "quick"))
    return (flops, "GFLOP/s") if flops else (nbytes, "GB/s")


def page_data(records, threshold=0.10):
    commits = store.commits_in_order(records)
    ops = [op for op in C.op_ids() if any(op in r["ms"] for r in records)]
    series = []
    for i, (sid, recs) in enumerate(store.by_series(records).items()):
        size = recs[0]["env"]["size"]
        entry = {"label": store.series_label(recs[0]), "color": COLORS[i % len(COLORS)],
                 "runs": len({r["run"] for r in recs}), "ops": {}}
        for op in ops:
            work, unit = work_of(op, size)
            entry["ops"][op] = {"work": work, "unit": unit, "points": store.points(recs, op),
                                "steps": store.steps(recs, op, threshold)}
        series.append(entry)
    return {"commits": [{"sha": s, "short": s[:8], "subject": subj} for s, subj in commits],
            "ops": ops, "series": series, "threshold": threshold,
            "clock": records[0]["env"]["clock"] if records else "cpu"}


def _fmt_step(step):
    lo, hi = step["ci"]
    return f"{step['ratio']:.3f} [{lo:.3f}, {hi:.3f}], {step['rounds']} rounds: {step['verdict']}"


def latest_table(data):
    """Per series, per op: the newest commit's figures and its verdict against the one before."""
    subjects = {c["sha"]: c["subject"] for c in data["commits"]}
    parts = []
    for s in data["series"]:
        rows = []
        for op in data["ops"]:
            info = s["ops"][op]
            timed = [c["sha"] for c in data["commits"] if c["sha"] in info["points"]]
            if not timed:
                continue
            sha = timed[-1]
            p = info["points"][sha]
            step = next((st for st in info["steps"] if st["commit"] == sha), None)
            versus = _fmt_step(step) if step and "verdict" in step else "not timed beside the one before"
            rows.append(
                f"<tr><td>{op}</td><td title='{html.escape(subjects[sha])}'>{sha[:8]}</td>"
                f"<td>{p['median']:.3f}</td><td>{p['min']:.3f} - {p['max']:.3f}</td><td>{p['n']}</td>"
                f"<td>{info['work'] / p['median'] / 1e6:.2f} {info['unit']}</td>"
                f"<td>{html.escape(versus)}</td></tr>")
        parts.append(
            f"<h3 style='color:{s['color']}'>{html.escape(s['label'])} ({s['runs']} runs)</h3>"
            "<table><tr><th>op</th><th>latest commit</th><th>median ms</th><th>min - max ms</th>"
            "<th>processes</th><th>rate</th><th>B/A vs the commit before [95% CI]</th></tr>"
            + "".join(rows) + "</table>")
    return "".join(parts)


def steps_table(data):
    rows = []
    for s in data["series"]:
        for op in data["ops"]:
            for st in s["ops"][op]["steps"]:
                if st.get("verdict", "same") != "same":
                    rows.append(f"<tr><td style='color:{s['color']}'>&#9632;</td><td>{op}</td>"
                                f"<td>{st['previous'][:8]} &rarr; {st['commit'][:8]}</td>"
                                f"<td>{html.escape(_fmt_step(st))}</td></tr>")
    if not rows:
        return "<p>No step: every commit is the <i>same</i> as the one before, within the rule.</p>"
    return ("<table><tr><th></th><th>op</th><th>commits</th><th>B/A [95% CI], verdict</th></tr>"
            + "".join(rows) + "</table>")


SCRIPT = r"""
(function () {
  var D = JSON.parse(document.getElementById('data').textContent);
  var NS = 'http://www.w3.org/2000/svg', W = 430, H = 190, L = 58, R = 10, T = 12, B = 46;
  var idx = {};
  D.commits.forEach(function (c, i) { idx[c.sha] = i; });
  function el(tag, attrs, parent, text) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    parent.appendChild(e);
    return e;
  }
  function plot(op, kind) {
    var svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('width', W); svg.setAttribute('height', H);
    svg.setAttribute('class', 'plot'); svg.setAttribute('data-op', op); svg.setAttribute('data-kind', kind);
    var val = function (s, v) { return kind === 'time' ? v : s.ops[op].work / v / 1e6; };
    var top = 0, unit = '';
    D.series.forEach(function (s) {
      unit = kind === 'time' ? 'ms (' + D.clock + ')' : s.ops[op].unit;
      for (var sha in s.ops[op].points) {
        var p = s.ops[op].points[sha];
        top = Math.max(top, val(s, kind === 'time' ? p.max : p.min));
      }
    });
    top = top * 1.1 || 1;
    var n = Math.max(D.commits.length - 1, 1);
    var x = function (i) { return L + 10 + (W - L - R - 20) * (D.commits.length > 1 ? i / n : 0.5); };
    var y = function (v) { return T + (H - T - B) * (1 - v / top); };
    el('rect', {x: L, y: T, width: W - L - R, height: H - T - B, fill: '#fafafa', stroke: '#bbb'}, svg);
    [0, 0.5, 1].forEach(function (f) {
      el('text', {x: L - 4, y: y(top * f) + 4, 'text-anchor': 'end', 'font-size': 10}, svg,
         (top * f).toPrecision(3));
    });
    el('text', {x: 12, y: T + (H - T - B) / 2, 'font-size': 10, 'text-anchor': 'middle',
                transform: 'rotate(-90 12 ' + (T + (H - T - B) / 2) + ')'}, svg, unit);
    D.commits.forEach(function (c, i) {
      el('text', {x: x(i), y: H - B + 12, 'font-size': 9, 'text-anchor': 'end',
                  transform: 'rotate(-35 ' + x(i) + ' ' + (H - B + 12) + ')'}, svg, c.short);
    });
    var drawn = 0;
    D.series.forEach(function (s) {
      var info = s.ops[op], line = [];
      info.steps.forEach(function (st) {
        if (st.verdict !== 'REGRESSION' && st.verdict !== 'faster') return;
        var color = st.verdict === 'REGRESSION' ? '#d00' : '#090', xs = x(idx[st.commit]);
        el('line', {x1: xs, x2: xs, y1: T, y2: H - B, stroke: color, 'stroke-dasharray': '4 3',
                    'class': 'step', 'data-commit': st.commit}, svg);
        el('text', {x: xs - 3, y: T + 10, 'font-size': 10, fill: color, 'text-anchor': 'end'}, svg,
           st.commit.slice(0, 8) + ' x' + st.ratio.toFixed(2));
      });
      D.commits.forEach(function (c, i) {
        var p = info.points[c.sha];
        if (!p) return;
        var lo = val(s, kind === 'time' ? p.min : p.max), hi = val(s, kind === 'time' ? p.max : p.min);
        var q1 = val(s, kind === 'time' ? p.q1 : p.q3), q3 = val(s, kind === 'time' ? p.q3 : p.q1);
        el('line', {x1: x(i), x2: x(i), y1: y(lo), y2: y(hi), stroke: s.color}, svg);
        el('rect', {x: x(i) - 3, y: y(q3), width: 6, height: Math.max(y(q1) - y(q3), 1),
                    fill: 'none', stroke: s.color}, svg);
        var m = val(s, p.median);
        el('circle', {cx: x(i), cy: y(m), r: 3, fill: s.color}, svg);
        el('title', {}, svg.lastChild, c.short + ' ' + c.subject + ': ' + m.toPrecision(4) + ' ' +
           unit + ' (' + p.n + ' processes)');
        line.push(x(i) + ',' + y(m));
        drawn++;
      });
      el('polyline', {points: line.join(' '), fill: 'none', stroke: s.color, 'stroke-width': 1.5}, svg);
    });
    svg.setAttribute('data-points', drawn);
    return svg;
  }
  var grid = document.getElementById('plots');
  D.ops.forEach(function (op) {
    var card = document.createElement('div');
    card.className = 'card';
    var h = document.createElement('h3');
    h.textContent = op;
    card.appendChild(h);
    card.appendChild(plot(op, 'time'));
    card.appendChild(plot(op, 'rate'));
    grid.appendChild(card);
  });
  document.body.setAttribute('data-plotted', D.ops.length);
})();
"""

TEMPLATE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>numbaconv: performance history</title>
<style>
body {{ font: 13px sans-serif; margin: 12px; }}
#plots {{ display: flex; flex-wrap: wrap; gap: 8px; }}
.card {{ border: 1px solid #ddd; padding: 4px; }}
.card h3 {{ margin: 2px 0; font-size: 13px; }}
.card svg {{ display: block; }}
table {{ border-collapse: collapse; margin: 4px 0 12px; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: left; }}
#errors {{ color: #d00; }}
</style></head>
<body>
<h1>numbaconv: performance history</h1>
<p>Generated {generated} from <code>{source}</code> ({n_records} process results,
{n_commits} commits) by <code>python -m perf.history page</code>. Each dot: the median over the
worker processes that timed the commit (each reports its op's median of several calls); whisker
min-max, box quartiles. A dashed line marks a step: the commit is slower (red, REGRESSION) or faster
(green) than the one before by more than {threshold:.0%} beyond the 95% bootstrap interval of the
per-round ratios of a run that timed both, interleaved (compare.py's rule).</p>
<pre id="errors"></pre>
<div id="plots"></div>
<h2>Latest</h2>
{latest}
<h2>Steps that are not <i>same</i></h2>
{steps}
<script id="data" type="application/json">{data}</script>
<script>
window.addEventListener('error', function (e) {{
  document.getElementById('errors').textContent += 'script error: ' + e.message + '\\n';
}});
</script>
<script>{script}</script>
</body></html>
"""


def render(records, threshold=0.10, source="perf/history/results.jsonl"):
    data = page_data(records, threshold)
    payload = json.dumps(data, sort_keys=True).replace("</", "<\\/")  # no early </script>
    return TEMPLATE.format(
        source=html.escape(source), generated=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), n_records=len(records),
        n_commits=len(data["commits"]), threshold=threshold, latest=latest_table(data),
        steps=steps_table(data), data=payload, script=SCRIPT)


def write(store_path, page_path, threshold=0.10):
    records = store.load(store_path)
    with open(page_path, "w") as f:
        f.write(render(records, threshold, os.path.relpath(store_path)))
    return records
