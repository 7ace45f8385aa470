/* lfp report: draws the page's charts with uPlot (vendored next to this file)
 * from the JSON that lfp report wrote into <script id="lfp-data">:
 *   {"log": {"step": [...], "block": [...], "train_loss": [...], "valid_loss": [...],
 *            "train_s": [...], "score": [...], "success": [...]} or null,
 *    "evals": [{"label": "...", "run": {what lfp eval / lfp sim --json printed}}, ...]}
 * When done, <body> carries data-lfp-charts (charts drawn) and
 * data-lfp-blank (charts whose canvas has no drawn pixel): what the browser
 * test reads. */
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("lfp-data").textContent);
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                   "#7f7f7f", "#bcbd22"];
  const drawn = [];
  const width = () => Math.max(360, Math.min(860, document.getElementById("main").clientWidth - 8));

  function note(el, text) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = text;
    el.appendChild(p);
  }

  /* one chart in the element with this id: xs and the series' ys (null: no value) */
  function chart(id, title, xlabel, ylabel, xs, series, o) {
    o = o || {};
    const el = document.getElementById(id);
    if (!el) return;
    const box = document.createElement("div");
    box.className = "chart";
    el.appendChild(box);
    const opts = {
      title: title,
      width: width(),
      height: o.height || 280,
      scales: {x: {time: false, distr: o.logx ? 3 : 1}, y: {distr: o.logy ? 3 : 1}},
      axes: [{label: xlabel}, {label: ylabel}],
      legend: {live: true},
      series: [{label: xlabel}].concat(series.map(function (s, i) {
        const c = s.color || PALETTE[i % PALETTE.length];
        const d = {label: s.label, stroke: c, width: s.points ? 0 : 1.5, spanGaps: true,
                   points: {show: !!s.points, size: 5, fill: c, stroke: c}};
        if (s.points) d.paths = function () { return null; };
        if (s.bars) {
          d.paths = uPlot.paths.bars({size: [0.9, 60]});
          d.fill = c + "99";
          d.points = {show: false};
        }
        return d;
      }))
    };
    if (o.yrange) opts.scales.y.range = o.yrange;
    const u = new uPlot(opts, [xs].concat(series.map(function (s) { return s.ys; })), box);
    drawn.push(u);
  }

  function logCharts() {
    const L = D.log;
    const lossEl = document.getElementById("chart-loss");
    if (!L || !L.step || !L.step.length) {
      note(lossEl, "No training log: pass --log OUT.csv (lfp train writes POLICY.lfp.csv).");
      note(document.getElementById("chart-score"), "No training log.");
      return;
    }
    const blocks = Array.from(new Set(L.block)).sort(function (a, b) { return a - b; });
    const ser = [];
    blocks.forEach(function (b, i) {
      const c = PALETTE[i % PALETTE.length];
      const tag = blocks.length > 1 ? "block " + b + " " : "";
      ser.push({label: tag + "train (EMA)", color: c,
                ys: L.train_loss.map(function (v, k) { return L.block[k] === b ? v : null; })});
      ser.push({label: tag + "validation", color: c, points: true,
                ys: L.valid_loss.map(function (v, k) { return L.block[k] === b ? v : null; })});
    });
    const pos = L.train_loss.concat(L.valid_loss).every(function (v) { return v === null || v > 0; });
    chart("chart-loss", "Training loss" + (blocks.length > 1 ? " per LFM block" : ""), "step", "loss", L.step, ser,
          {logy: pos});
    const has = L.score.some(function (v) { return v !== null; });
    const scoreEl = document.getElementById("chart-score");
    if (!has) {
      note(scoreEl, "No score curve: the policy was trained without --eval-every.");
      return;
    }
    const rows = L.step.map(function (s, k) { return k; }).filter(function (k) { return L.score[k] !== null; });
    const pick = function (a) { return rows.map(function (k) { return a[k]; }); };
    const sc = [{label: "score", ys: pick(L.score), color: PALETTE[0]},
                {label: "success", ys: pick(L.success), color: PALETTE[2]}];
    chart("chart-score", "Selection score against steps", "step", "score / success", pick(L.step), sc,
          {yrange: [0, 1]});
    chart("chart-score", "... against training time", "training seconds", "score / success", pick(L.train_s),
          sc.map(function (s) { return Object.assign({}, s); }), {yrange: [0, 1]});
  }

  function evalCharts() {
    const latEl = document.getElementById("chart-latency");
    const trEl = document.getElementById("chart-traces");
    let nlat = 0, ntr = 0;
    D.evals.forEach(function (e, i) {
      const h = e.run.latency_us_hist;
      if (h && h.counts && h.counts.length) {
        const mid = h.counts.map(function (_, b) { return Math.sqrt(Math.max(h.edges[b], 1e-9) * h.edges[b + 1]); });
        chart("chart-latency", "Chunk latency: " + e.label, "microseconds", "chunks", mid,
              [{label: "chunks", ys: h.counts, bars: true, color: PALETTE[i % PALETTE.length]}],
              {logx: h.edges[0] > 0, height: 220});
        nlat++;
      }
      (e.run.traces || []).forEach(function (t) {
        if (!t.len) return;
        const steps = t.actions.map(function (_, k) { return k; });
        const A = t.actions[0].length;
        const ser = [];
        for (let j = 0; j < A; j++)
          ser.push({label: "a[" + j + "]", ys: t.actions.map(function (a) { return a[j]; })});
        chart("chart-traces", "Actions, " + t.episode + " (" + (t.success ? "success" : "failure") + "): " + e.label,
              "step", "action", steps, ser, {height: 220});
        ntr++;
        if (t.coverage) {
          const cs = t.coverage.map(function (_, k) { return k; });
          chart("chart-coverage", "Goal coverage, " + t.episode + " (" + (t.success ? "success" : "failure") + "): " +
                e.label, "step", "coverage", cs, [{label: "coverage", ys: t.coverage, color: PALETTE[2]},
                {label: "goal", ys: t.coverage.map(function () { return e.run.coverage_goal || 0.95; }),
                 color: "#999999"}], {yrange: [0, 1], height: 220});
        }
      });
    });
    if (!D.evals.length) {
      note(latEl, "No evaluation: pass --eval EVAL.json (from lfp eval --json).");
      note(trEl, "No evaluation.");
    } else {
      if (!nlat) note(latEl, "The evaluations hold no latency histogram (lfp eval --json writes one).");
      if (!ntr) note(trEl, "The evaluations hold no traces (lfp eval --json writes the first success and failure).");
    }
    const cov = document.getElementById("chart-coverage");
    if (cov && !cov.children.length) cov.parentNode.style.display = "none";
  }

  function blank(u) {
    const c = u.root.querySelector("canvas");
    if (!c || !c.width || !c.height) return true;
    const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < px.length; i += 4)
      if (px[i] !== 0) return false;
    return true;
  }

  function videos() {
    document.querySelectorAll("video").forEach(function (v) {
      v.addEventListener("loadeddata", function () {
        v.dataset.loaded = v.videoWidth + "x" + v.videoHeight;
      });
    });
  }

  logCharts();
  evalCharts();
  videos();
  /* uPlot paints on the next animation frame: count blank canvases after it */
  requestAnimationFrame(function () {
    setTimeout(function () {
      document.body.dataset.lfpCharts = String(drawn.length);
      document.body.dataset.lfpBlank = String(drawn.filter(blank).length);
    }, 0);
  });
})();
