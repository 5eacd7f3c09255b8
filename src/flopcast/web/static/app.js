// flopcast web page: forms -> JSON API -> tables and Plotly charts. No build step, no framework.
// Every shown number is a cell with data-field (its path in the API's JSON), data-value (the
// JSON number) and, when the page shows it in another unit, data-scale (shown = value * scale).
"use strict";

const GIB = 2 ** 30;
const TO_GIB = 1 / GIB;
const PCT = 100;
const CHART_CONFIG = { displaylogo: false, responsive: true };

// ---------------------------------------------------------------- formatting and DOM helpers

function fmt(x) {
  if (x === null || x === undefined) return "—";
  if (typeof x === "boolean") return x ? "yes" : "no";
  if (typeof x !== "number" || !Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (Number.isInteger(x) && a < 1e15) return x.toLocaleString("en-US");
  if (a !== 0 && (a >= 1e15 || a < 1e-3)) return x.toExponential(3);
  return x.toLocaleString("en-US", { maximumSignificantDigits: 4 });
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}

function get(obj, path) {
  return path.split(".").reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);
}

// A table cell for data[path]; numbers carry their JSON value so a reader (or a test) can check it.
function valueCell(data, path, scale) {
  const v = get(data, path);
  const shown = typeof v === "number" && scale ? v * scale : v;
  const attrs = { "data-field": path };
  if (typeof v === "number") {
    attrs["data-value"] = String(v);
    if (scale && scale !== 1) attrs["data-scale"] = String(scale);
    attrs.class = "num";
  }
  return el("td", attrs, fmt(shown));
}

// rows: [[label, path, scale?], ...] -> two-column table; absent or null values are left out.
function statTable(title, data, rows) {
  const body = rows
    .filter(([, path]) => get(data, path) !== undefined && get(data, path) !== null)
    .map(([label, path, scale]) => el("tr", {}, el("th", { scope: "row" }, label),
      valueCell(data, path, scale)));
  return el("table", { class: "stats" }, el("caption", {}, title), el("tbody", {}, ...body));
}

// A grid: one row per item of rowKeys, one column per [header, key, scale] of cols;
// the cell's path is pathOf(rowKey, colKey).
function gridTable(title, data, corner, rowKeys, cols, pathOf, rowLabel) {
  const head = el("tr", {}, el("th", {}, corner), ...cols.map(([h]) => el("th", {}, h)));
  const body = rowKeys.map((r) => el("tr", {}, el("th", { scope: "row" }, rowLabel ? rowLabel(r) : r),
    ...cols.map(([, c, scale]) => valueCell(data, pathOf(r, c), scale))));
  return el("table", { class: "grid" }, el("caption", {}, title), el("thead", {}, head),
    el("tbody", {}, ...body));
}

function note(text) {
  return el("p", { class: "note" }, text);
}

// Plotly (4.8 MB) is fetched when the first chart is drawn, not with the page: the forms and
// tables never wait for it.
const PLOTLY_URL = "/static/vendor/plotly.min.js";
let plotlyLoading = null;

function loadPlotly() {
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      const script = el("script", { src: PLOTLY_URL, id: "plotly-js" });
      script.addEventListener("load", resolve);
      script.addEventListener("error", reject);
      document.head.append(script);
    });
  }
  return plotlyLoading;
}

function chart(id, traces, layout) {
  const div = el("div", { id, class: "chart" });
  const base = { margin: { t: 40, r: 20, b: 90, l: 70 }, height: 360, font: { size: 12 },
    legend: { orientation: "h", y: -0.3 } };
  loadPlotly().then(
    () => window.Plotly.newPlot(div, traces, { ...base, ...layout }, CHART_CONFIG),
    () => { div.textContent = `(charts need ${PLOTLY_URL}, which did not load)`; });
  return div;
}

function configText(c, keys) {
  return keys.filter((k) => c && c[k] !== undefined && c[k] !== null)
    .map((k) => `${k}=${c[k]}`).join(" ");
}

// ---------------------------------------------------------------- renderers, one per form

const MEMORY_KINDS = ["weights", "gradients", "optimizer", "activations", "temporary"];
const PARALLEL_KEYS = ["tp", "pp", "vp", "cp", "ep", "dp", "sp", "zero_stage", "micro_batch",
  "global_batch", "recompute", "schedule"];

function renderTrain(d) {
  const out = [statTable("Result", d, [
    ["step time, s", "step_time_s"], ["tokens/s", "tokens_per_s"],
    ["tokens/s per GPU", "tokens_per_s_per_gpu"], ["model TFLOP/s per GPU", "model_tflops_per_gpu"],
    ["MFU, %", "mfu", PCT], ["HFU, %", "hfu", PCT], ["fits in memory", "fits"],
    ["memory per GPU, GiB", "memory.total", TO_GIB], ["GPU memory, GiB", "memory.capacity", TO_GIB],
    ["tokens", "tokens"], ["time to train, days", "time_to_train_days"], ["GPU-hours", "gpu_hours"],
    ["cost, $", "cost_usd"], ["energy, MWh", "energy_mwh"], ["$ per GPU-hour", "price_per_gpu_hour_usd"],
  ])];
  const c = d.config || {};
  out.unshift(note(`${c.model} on ${c.num_gpus}× ${c.gpu} (${c.framework}, ${c.precision}, ` +
    `seq ${c.seq_len}${c.lora_rank ? `, LoRA r=${c.lora_rank} on ${c.lora_targets.join(", ")}` : ""}): ` +
    `${configText(c, PARALLEL_KEYS)}`));
  if (d.expected_error) out.splice(1, 0, note(d.expected_error.text));
  out.push(...trainMemory(d), ...trainBreakdown(d));
  return out;
}

function trainMemory(d) {
  const stages = Object.keys(d.memory_by_stage || {});
  const kinds = [...MEMORY_KINDS, "total"];
  const table = gridTable("Memory per GPU by kind and pipeline stage, GiB", d, "kind", kinds,
    stages.map((s) => [`${s} stage`, s, TO_GIB]), (k, s) => `memory_by_stage.${s}.${k}`);
  const traces = MEMORY_KINDS.map((k) => ({ type: "bar", name: k, x: stages,
    y: stages.map((s) => d.memory_by_stage[s][k] / GIB) }));
  const cap = d.memory.capacity / GIB;
  const layout = { barmode: "stack", title: { text: "Memory by kind and stage" },
    yaxis: { title: { text: "GiB per GPU" } },
    shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: cap, y1: cap,
      line: { dash: "dash", color: "#b00" } }],
    annotations: [{ xref: "paper", x: 1, y: cap, text: "capacity", showarrow: false, yanchor: "bottom" }] };
  const out = [table, chart("train-chart-memory", traces, layout)];
  const phases = d.memory_phases ? Object.keys(d.memory_phases) : [];
  if (phases.length) {
    const parts = Object.keys(d.memory_phases[phases[0]])
      .filter((k) => k !== "total" && k !== "allocated");
    const ptraces = parts.map((k) => ({ type: "bar", name: k, x: phases,
      y: phases.map((p) => d.memory_phases[p][k] / GIB) }));
    out.push(chart("train-chart-phases", ptraces, { barmode: "stack",
      title: { text: "Memory through the step (largest stage)" },
      yaxis: { title: { text: "GiB per GPU" } } }));
  }
  return out;
}

function trainBreakdown(d) {
  const parts = Object.keys(d.breakdown_s || {});
  const table = statTable("Step time breakdown, s", d, parts.map((k) =>
    [k.replace(/_s$/, "").replace(/_/g, " "), `breakdown_s.${k}`]));
  const trace = { type: "bar", orientation: "h", y: parts.map((k) => k.replace(/_s$/, "")),
    x: parts.map((k) => d.breakdown_s[k]) };
  return [table, chart("train-chart-breakdown", [trace], {
    title: { text: "Step time breakdown" }, xaxis: { title: { text: "seconds per step" } },
    yaxis: { autorange: "reversed" }, margin: { l: 140, t: 40, r: 20, b: 50 } })];
}

function renderPlan(d) {
  if (d.sweep) d = d.sweep[0];
  const out = [statTable("Search", d, [
    ["configurations enumerated", "counts.enumerated"], ["evaluated", "counts.evaluated"],
    ["fit in memory", "counts.fit"], ["do not fit", "counts.do_not_fit"]])];
  const top = d.top || [];
  const cols = [["tp", "config.tp"], ["pp", "config.pp"], ["vp", "config.vp"], ["cp", "config.cp"],
    ["ep", "config.ep"], ["dp", "config.dp"], ["micro", "config.micro_batch"],
    ["ZeRO", "config.zero_stage"], ["recompute", "config.recompute"],
    ["step s", "step_time_s"], ["tokens/s", "tokens_per_s"], ["MFU %", "mfu", PCT],
    ["GiB/GPU", "memory.total", TO_GIB], ["fits", "fits"], ["days", "time_to_train_days"],
    ["$", "cost_usd"]].filter(([, c]) => top.some((t) => get(t, c) !== undefined
      && get(t, c) !== null));
  out.push(gridTable(`Best ${top.length} configurations`, d, "#", top.map((_, i) => i), cols,
    (i, c) => `top.${i}.${c}`, (i) => i + 1));
  out.push(...planPareto(d), ...planClusters(d));
  const rejected = Object.keys(d.rejected || {});
  if (rejected.length) {
    out.push(statTable("Rejected, by reason", d, rejected.map((r) => [r, `rejected.${r}`])));
  }
  if (d.expected_error) out.push(note(d.expected_error.text));
  return out;
}

function planPareto(d) {
  const p = d.pareto || [];
  if (!p.length) return [];
  const label = (e) => configText(e.config, PARALLEL_KEYS);
  const trace = { type: "scatter", mode: "lines+markers", x: p.map((e) => e.memory_headroom_gib),
    y: p.map((e) => e.tokens_per_s), text: p.map(label), hovertemplate: "%{text}<extra></extra>",
    line: { shape: "hv" } };
  return [chart("plan-chart-pareto", [trace], {
    title: { text: `Pareto front: throughput vs memory headroom (${p.length} configurations)` },
    xaxis: { title: { text: "memory headroom, GiB per GPU" } },
    yaxis: { title: { text: "tokens/s" } } })];
}

function planClusters(d) {
  const cl = d.clusters || [];
  if (cl.length < 2) return [];
  const cols = [["fits", "fits"], ["tokens/s", "tokens_per_s"], ["$/M tokens", "usd_per_million_tokens"],
    ["MFU %", "mfu", PCT], ["days", "time_to_train_days"], ["$", "cost_usd"]];
  return [gridTable("Clusters", d, "cluster", cl.map((_, i) => i), cols,
    (i, c) => `clusters.${i}.${c}`, (i) => `${cl[i].num_gpus}× ${cl[i].gpu}`)];
}

function renderInfer(d) {
  const out = [statTable("Result", d, [
    ["mode", "mode"], ["batch", "batch"], ["concurrency", "concurrency"],
    ["TTFT, ms", "ttft_ms"], ["TPOT, ms", "tpot_ms"], ["ITL, ms", "itl_ms"],
    ["end-to-end latency, ms", "e2e_latency_ms"], ["output tokens/s", "output_tokens_per_s"],
    ["output tokens/s per GPU", "output_tokens_per_s_per_gpu"], ["requests/s", "requests_per_s"],
    ["max concurrent sequences", "max_concurrent_sequences"], ["limited by", "limited_by"],
    ["fits", "fits"]])];
  out.push(statTable("Memory per GPU, GiB", d, Object.keys(d.memory || {})
    .map((k) => [k.replace(/_/g, " "), `memory.${k}`, TO_GIB])));
  const parts = Object.keys(d.decode_breakdown_s || {}).filter((k) => k !== "step_s");
  const traces = ["prefill", "decode"].map((phase) => ({ type: "bar", name: phase,
    x: parts.map((k) => k.replace(/_s$/, "")),
    y: parts.map((k) => d[`${phase}_breakdown_s`][k] * 1e3) }));
  out.push(chart("infer-chart-breakdown", traces, { barmode: "group",
    title: { text: "Prefill and one decode step, by part" }, yaxis: { title: { text: "ms" } } }));
  if (d.expected_error) out.push(note(d.expected_error.text));
  return out;
}

const LATENCIES = [["TTFT", "ttft_ms"], ["TPOT", "tpot_ms"], ["ITL", "itl_ms"],
  ["end-to-end", "e2e_latency_ms"]];
const PERCENTILES = [["mean", "mean"], ["p50", "p50"], ["p90", "p90"], ["p99", "p99"]];

function latencyTable(d, prefix) {
  const present = LATENCIES.filter(([, k]) => get(d, prefix + k) !== undefined);
  return gridTable("Latency percentiles, ms", d, "", present.map(([, k]) => k), PERCENTILES,
    (k, p) => `${prefix}${k}.${p}`, (k) => LATENCIES.find(([, key]) => key === k)[0]);
}

// The latencies that have a distribution in a serving answer's cdf (none has no values).
const withCdf = (cdf) => LATENCIES.filter(([, k]) => cdf[k] && cdf[k].values.length);

// The latency at each quantile of the API's fixed grid (cdf.*.quantiles), as a collapsed table.
function cdfTable(d, prefix) {
  const cdf = get(d, `${prefix}cdf`) || {};
  const present = withCdf(cdf);
  if (!present.length) return [];
  const qs = cdf[present[0][1]].quantiles;
  const table = gridTable("Latency at each quantile, ms", d, "quantile", qs.map((_, i) => i),
    present.map(([name, k]) => [name, k]), (i, k) => `${prefix}cdf.${k}.values.${i}`,
    (i) => `${fmt(qs[i] * PCT)} %`);
  return [el("details", { class: "cdf" }, el("summary", {}, "Latency distribution (table)"),
    table)];
}

// The CDF of each latency over the simulated requests (ITL: over output tokens), drawn through
// the API's quantiles.
function latencyChart(id, s) {
  const cdf = s.cdf || {};
  const traces = withCdf(cdf).map(([name, k]) => ({ type: "scatter", mode: "lines+markers", name,
    x: cdf[k].values, y: cdf[k].quantiles, marker: { size: 4 } }));
  return chart(id, traces, { title: { text: "Latency CDF" },
    xaxis: { title: { text: "ms" }, type: "log" },
    yaxis: { title: { text: "share of requests (ITL: of tokens)" }, range: [0, 1] } });
}

const SERVE_ROWS = [["requests/s", "requests_per_s"], ["goodput, requests/s", "goodput_requests_per_s"],
  ["output tokens/s", "output_tokens_per_s"], ["output tokens/s per GPU", "output_tokens_per_s_per_gpu"],
  ["output tokens/s per user", "output_tokens_per_s_per_user"], ["total tokens/s", "total_tokens_per_s"],
  ["requests", "num_requests"], ["mean input tokens", "mean_input_len"],
  ["mean output tokens", "mean_output_len"], ["simulated time, s", "duration_s"],
  ["busy share", "busy_share"], ["KV cache peak use, %", "kv_utilization_peak", PCT],
  ["queue peak", "queue_length_peak"], ["preemptions", "preemptions"]];

function renderServe(d) {
  const c = d.config || {};
  const out = [note(`${c.model} on ${c.total_gpus}× ${c.gpu}, ${c.engine} (${c.scheduler}), ` +
    `${configText(c, ["tp", "pp", "replicas", "max_num_seqs", "max_num_tokens", "router"])}`)];
  out.push(statTable("Throughput", d, SERVE_ROWS), latencyTable(d, ""),
    latencyChart("serve-chart-cdf", d), ...cdfTable(d, ""));
  const range = get(d, "draw_range.requests_per_s");
  if (d.draws > 1 && range) out.push(note(`Medians of ${d.draws} draws of the workload ` +
    `(requests/s ranged ${range[0].toFixed(2)}–${range[1].toFixed(2)} over them); the chart shows their median CDF.`));
  if (d.expected_error) out.push(note(d.expected_error.text));
  return out;
}

function renderServePlan(d) {
  const fleet = get(d, "best.fleet") || [];
  const out = [gridTable("Cheapest fleet", d, "replica", fleet.map((_, i) => i),
    [["count", "count"], ["$/h", "usd_per_hour"]], (i, c) => `best.fleet.${i}.${c}`,
    (i) => fleet[i].replica + (fleet[i].sizes ? ` (request sizes ${fleet[i].sizes.map(
      ([lo, hi, share]) => `${lo}-${hi - 1}${share < 1 ? ` ×${share.toFixed(2)}` : ""}`).join(", ")})`
      : "")),
    statTable("Fleet", d, [["$/hour", "best.usd_per_hour"], ["routing", "best.routing"]])];
  if (d.best && d.best.summary) {
    out.push(statTable("Simulated on the fleet", d, SERVE_ROWS.map(([l, k, s]) => [l, `best.summary.${k}`, s])),
      latencyTable(d, "best.summary."), latencyChart("servplan-chart-cdf", d.best.summary),
      ...cdfTable(d, "best.summary."));
  }
  const front = d.front || [];
  if (front.length) {
    out.push(chart("servplan-chart-front", [{ type: "scatter", mode: "markers",
      x: front.map((f) => f.usd_per_hour), y: front.map((f) => f.capacity_rps),
      text: front.map((f) => f.replica), hovertemplate: "%{text}<extra></extra>",
      marker: { size: 10 } }], {
      title: { text: "Replica options: capacity meeting the SLOs vs price" },
      xaxis: { title: { text: "$ per hour" } }, yaxis: { title: { text: "requests/s" } } }));
    out.push(gridTable("Replica options", d, "replica", front.map((_, i) => i),
      [["requests/s", "capacity_rps"], ["$/h", "usd_per_hour"], ["p99 TTFT ms", "ttft_p99_ms"],
        ["p99 TPOT ms", "tpot_p99_ms"]], (i, c) => `front.${i}.${c}`, (i) => front[i].replica));
  }
  if (d.expected_error) out.push(note(d.expected_error.text));
  return out;
}

function renderCoverage(d) {
  const curves = d.curves || [];
  const name = (c) => `${c.model} ${c.benchmark}`;
  const traces = [];
  curves.forEach((c) => {
    traces.push({ type: "scatter", mode: "lines+markers", name: name(c), x: c.k, y: c.coverage });
    if (c.low && c.high) {
      traces.push({ type: "scatter", mode: "lines", x: [...c.k, ...[...c.k].reverse()],
        y: [...c.high, ...[...c.low].reverse()], fill: "toself", opacity: 0.2,
        line: { width: 0 }, showlegend: false, hoverinfo: "skip", name: `${name(c)} band` });
    }
  });
  const ks = curves.length ? curves[0].k : [];
  return [chart("reason-chart-coverage", traces, { title: { text: "Coverage (pass@k)" },
    xaxis: { title: { text: "samples per problem, k" }, type: "log" },
    yaxis: { title: { text: "share of problems solved" }, range: [0, 1] } }),
  gridTable("Coverage, %", d, "model, benchmark", curves.map((_, i) => i),
    ks.map((k, j) => [`k=${fmt(k)}`, j, PCT]), (i, j) => `curves.${i}.coverage.${j}`,
    (i) => name(curves[i]))];
}

const COST_COLS = [["FLOPs", "flops"], ["Kinetics eFLOPs", "kinetics_eflops"],
  ["KV share of eFLOPs, %", "kinetics_memory_share", PCT], ["time, s", "seconds"],
  ["prefill, s", "prefill_s"], ["decode, s", "decode_s"], ["trials at once", "parallel_trials"],
  ["waves", "waves"], ["GPU-hours", "gpu_hours"], ["$", "usd"], ["energy, J", "joules"]];

function renderReasonCost(d) {
  const rows = d.costs || [];
  const trials = rows.map((r) => r.trials);
  const out = [note(`${d.model} on ${d.gpus}× ${d.gpu}: ${d.prompt_len} prompt tokens, ` +
    `${d.out_len} generated tokens per trial`),
  gridTable("Per problem", d, "trials", rows.map((_, i) => i), COST_COLS,
    (i, c) => `costs.${i}.${c}`, (i) => trials[i])];
  const line = (name, key, axis) => ({ type: "scatter", mode: "lines+markers", name, x: trials,
    y: rows.map((r) => r[key]), yaxis: axis });
  out.push(chart("rcost-chart-cost", [line("FLOPs", "flops", "y"),
    line("Kinetics eFLOPs", "kinetics_eflops", "y"), line("$ per problem", "usd", "y2")], {
    title: { text: "Cost of one problem against samples" },
    xaxis: { title: { text: "samples per problem" }, type: "log" },
    yaxis: { title: { text: "FLOPs per problem" }, type: "log" },
    yaxis2: { title: { text: "$ per problem" }, rangemode: "tozero", tickprefix: "$",
      tickmode: "auto", overlaying: "y", side: "right" },
    margin: { t: 40, r: 70, b: 90, l: 70 } }));
  return out;
}

function renderReasonPlan(d) {
  const obj = d.objective || "usd";
  const best = statTable("Best", d, [["model", "best.model"], ["strategy", "best.strategy"],
    ["samples per problem", "best.k"], ["accuracy, %", "best.accuracy", PCT],
    ["$ per problem", "best.usd"], ["joules per problem", "best.joules"],
    ["latency, s", "best.latency_s"], ["GPU-hours", "best.gpu_hours"]]);
  const front = d.front || [];
  const byModel = {};
  front.forEach((f) => { (byModel[f.model] = byModel[f.model] || []).push(f); });
  const xKey = { usd: "usd", energy: "joules", latency: "latency_s" }[obj] || obj;
  const traces = Object.entries(byModel).map(([m, fs]) => ({ type: "scatter", mode: "markers",
    name: m, x: fs.map((f) => f[xKey]), y: fs.map((f) => f.accuracy),
    text: fs.map((f) => `${f.strategy} k=${f.k}`) }));
  if (d.best) {
    traces.push({ type: "scatter", mode: "markers", name: "best", x: [d.best[xKey]],
      y: [d.best.accuracy], marker: { size: 14, symbol: "star", color: "#b00" } });
  }
  return [best, chart("rplan-chart-front", traces, {
    title: { text: "Accuracy vs cost per problem (the front)" },
    xaxis: { title: { text: `${xKey} per problem` }, type: "log" },
    yaxis: { title: { text: "accuracy" }, range: [0, 1] } })];
}

function renderValidate(d) {
  const out = [note(`${d.kind} measurements`), statTable("Summary", d, [["rows", "summary.rows"],
    ["predicted", "summary.predicted"], ["median error, %", "summary.median_ape_pct"],
    ["p90 error, %", "summary.p90_ape_pct"]])];
  const errCols = [["rows", "rows"], ["predicted", "predicted"], ["median %", "median_ape_pct"],
    ["p90 %", "p90_ape_pct"]];
  for (const [group, title] of [["by_source", "By source"], ["by_gpu", "By GPU"],
    ["by_metric", "By metric"]]) {
    const keys = Object.keys(d[group] || {});
    if (keys.length) out.push(gridTable(title, d, "", keys, errCols, (k, c) => `${group}.${k}.${c}`));
  }
  const rows = (d.rows || []).map((r, i) => [r, i])
    .sort((a, b) => (b[0].ape_pct ?? -1) - (a[0].ape_pct ?? -1));
  out.push(gridTable("Rows, worst first", d, "id", rows.map(([, i]) => i),
    [["metric", "metric"], ["measured", "measured"], ["predicted", "predicted"], ["error %", "ape_pct"],
      ["skipped", "skipped"]], (i, c) => `rows.${i}.${c}`, (i) => d.rows[i].id));
  return out;
}

const RENDER = { train: renderTrain, plan: renderPlan, infer: renderInfer, serve: renderServe,
  servplan: renderServePlan, reason: renderCoverage, rcost: renderReasonCost,
  rplan: renderReasonPlan,
  validate: renderValidate };

// ---------------------------------------------------------------- forms, the URL, the API

const formKey = (form) => form.getAttribute("id").replace(/-form$/, "");
// A form's own data-* attribute; form.dataset would be shadowed by a field named "dataset".
const formAttr = (form, name) => form.getAttribute(`data-${name}`);

// The request body: the filled fields, named as the CLI options in snake_case; empty = default.
function formBody(form) {
  const body = {};
  for (const f of form.elements) {
    if (!f.name || f.type === "file" || f.value.trim() === "") continue;
    const v = f.value.trim();
    if (f.type === "number" || f.dataset.number !== undefined) body[f.name] = Number(v);
    else if (f.dataset.list !== undefined) body[f.name] = v.split(",").map((x) => x.trim());
    else if (v === "true" || v === "false") body[f.name] = v === "true";
    else body[f.name] = v;
  }
  return body;
}

function resetField(f) {
  if (f.tagName === "SELECT") {
    const dflt = f.dataset.default;
    const hit = [...f.options].find((o) => (dflt ? o.value === dflt : o.defaultSelected));
    f.selectedIndex = hit ? hit.index : 0;
  } else if (f.type !== "file") {
    f.value = f.defaultValue;
  }
}

function fillForm(form, params) {
  for (const f of form.elements) {
    if (!f.name || f.type === "file") continue;
    resetField(f);
    if (!params.has(f.name)) continue;
    const v = params.get(f.name);
    if (f.tagName === "SELECT" && ![...f.options].some((o) => o.value === v)) {
      f.append(el("option", { value: v }, v));
    }
    f.value = v;
  }
}

function showTab(tab) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.dataset.tab !== tab;
  for (const b of document.querySelectorAll("#tabs button")) {
    b.classList.toggle("active", b.dataset.tab === tab);
  }
}

// "#train?model=llama-3.1-8b&gpus=8" -> show the train tab, fill its form, run it.
function applyHash() {
  const hash = location.hash.slice(1);
  const cut = hash.indexOf("?");
  const key = decodeURIComponent(cut < 0 ? hash : hash.slice(0, cut));
  const query = cut < 0 ? undefined : hash.slice(cut + 1);
  const form = key && document.getElementById(`${key}-form`);
  if (!form) {
    const tab = document.querySelector(`#tabs button[data-tab="${key}"]`);
    showTab(tab ? key : "train");
    return;
  }
  showTab(form.closest("section").dataset.tab);
  if (query === undefined) return;
  fillForm(form, new URLSearchParams(query));
  if (!formAttr(form, "upload")) submit(form);
}

function errorLine(status, data) {
  const d = data && data.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d) && d.length) return `${(d[0].loc || []).slice(1).join(".")}: ${d[0].msg}`;
  return `HTTP ${status}`;
}

async function callApi(form) {
  const init = { method: "POST" };
  if (formAttr(form, "upload")) {
    const input = form.elements[formAttr(form, "upload")];
    if (!input.files.length) return { ok: false, detail: "file: choose a CSV file" };
    init.body = new FormData();
    init.body.append(formAttr(form, "upload"), input.files[0]);
  } else {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(formBody(form));
  }
  let res;
  try {
    res = await fetch(formAttr(form, "endpoint"), init);
  } catch (e) {
    return { ok: false, detail: `the server did not answer (${e.message})` };
  }
  const data = await res.json().catch(() => null);
  if (!res.ok || !data) return { ok: false, detail: errorLine(res.status, data) };
  return { ok: true, data, warnings: headerWarnings(res.headers.get("X-Flopcast-Warning")) };
}

// Allowed but doubtful input: the API lists the CLI's warnings in a JSON header.
function headerWarnings(value) {
  if (!value) return [];
  try {
    const list = JSON.parse(value);
    return Array.isArray(list) ? list.map(String) : [String(list)];
  } catch (e) {
    return [value];
  }
}

async function submit(form) {
  const key = formKey(form);
  const result = document.getElementById(`${key}-result`);
  const error = document.getElementById(`${key}-error`);
  const button = document.getElementById(`${key}-submit`);
  if (!formAttr(form, "upload")) {
    const query = new URLSearchParams(formBody(form)).toString();
    history.replaceState(null, "", `#${key}?${query}`);
  }
  button.disabled = true;
  result.dataset.state = "loading";
  error.hidden = true;
  const answer = await callApi(form);
  button.disabled = false;
  if (!answer.ok) {
    error.textContent = answer.detail;
    error.hidden = false;
    result.replaceChildren();
    result.dataset.state = "error";
    return;
  }
  const warnings = answer.warnings.map((w) => el("p", { class: "warning" }, `warning: ${w}`));
  result.replaceChildren(...warnings, ...RENDER[key](answer.data));
  result.dataset.state = "done";
}

// ---------------------------------------------------------------- catalogs and start-up

async function fillCatalogs() {
  const selects = [...document.querySelectorAll("select[data-catalog]")];
  const kinds = [...new Set(selects.map((s) => s.dataset.catalog))];
  const lists = {};
  await Promise.all(kinds.map(async (kind) => {
    try {
      const res = await fetch(`/api/catalog/${kind}`);
      lists[kind] = res.ok ? await res.json() : [];
    } catch (e) {
      lists[kind] = [];
    }
  }));
  for (const s of selects) {
    const items = lists[s.dataset.catalog].map((e) => (typeof e === "string" ? { id: e } : e));
    if (s.dataset.empty !== undefined) s.append(el("option", { value: "" }, s.dataset.empty));
    if (!items.some((e) => e.id === s.dataset.default) && s.dataset.default) {
      items.unshift({ id: s.dataset.default });
    }
    for (const e of items) s.append(el("option", { value: e.id, title: e.name }, e.id));
    resetField(s);
  }
}

// <template data-use="fields-X"> inside a form becomes a copy of the fields of #fields-X.
function expandTemplates() {
  for (const slot of document.querySelectorAll("form template[data-use]")) {
    slot.replaceWith(document.getElementById(slot.dataset.use).content.cloneNode(true));
  }
}

async function init() {
  expandTemplates();
  for (const b of document.querySelectorAll("#tabs button")) {
    b.addEventListener("click", () => {
      showTab(b.dataset.tab);
      history.replaceState(null, "", `#${b.dataset.tab}`);
    });
  }
  for (const form of document.querySelectorAll("form[data-endpoint]")) {
    const key = formKey(form);
    form.after(el("p", { class: "error", id: `${key}-error`, role: "alert", hidden: "" }),
      el("div", { class: "result", id: `${key}-result`, "aria-live": "polite" }));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      submit(form);
    });
  }
  await fillCatalogs();
  applyHash();
  window.addEventListener("hashchange", applyHash);
  document.body.dataset.ready = "true";
}

init();
