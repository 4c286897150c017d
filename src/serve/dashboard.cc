// The page GET /dashboard serves: one self-contained HTML document (no network references; its
// script reads /metrics and /health of the server that served it), built into the binary.
#include "slimlm/serve/dashboard.h"

namespace slimlm::serve {

std::string_view DashboardHtml() {
  return R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>slimlm dashboard</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 16px; color: #1d2433; background: #f6f7f9; }
  h1 { font-size: 18px; margin: 0 0 4px; }
  #status { color: #5a6270; margin-bottom: 12px; }
  #status.down { color: #b3261e; font-weight: 600; }
  .stats { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px;
           margin-bottom: 12px; }
  .stat { background: #fff; border-radius: 6px; padding: 8px 10px; box-shadow: 0 1px 2px #0002; }
  .stat .v { font-size: 22px; font-weight: 600; }
  .stat .k { color: #5a6270; font-size: 12px; }
  .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 10px; }
  .chart { background: #fff; border-radius: 6px; padding: 8px; box-shadow: 0 1px 2px #0002; }
  .chart h2 { font-size: 13px; margin: 0 0 4px; font-weight: 600; }
  .legend span { margin-right: 12px; font-size: 12px; }
  svg { width: 100%; height: 150px; display: block; }
  .axis { stroke: #d5d9e0; stroke-width: 1; }
  .lbl { fill: #5a6270; font-size: 10px; }
</style>
</head>
<body>
<h1>slimlm <span id="model"></span></h1>
<div id="status">connecting…</div>
<div class="stats">
  <div class="stat"><div class="v" id="stat-gen">-</div><div class="k">generated tokens/s</div></div>
  <div class="stat"><div class="v" id="stat-ttft">-</div><div class="k">TTFT p50 / p99</div></div>
  <div class="stat"><div class="v" id="stat-itl">-</div><div class="k">inter-token p50 / p99</div></div>
  <div class="stat"><div class="v" id="stat-req">-</div><div class="k">running / waiting</div></div>
  <div class="stat"><div class="v" id="stat-kv">-</div><div class="k">KV cache used</div></div>
  <div class="stat"><div class="v" id="stat-cpu">-</div><div class="k">CPU / resident memory</div></div>
</div>
<div class="charts" id="charts"></div>
<script>
"use strict";
const HISTORY = 300;  // seconds shown
const POLL = 2000;    // ms between scrapes
const COLORS = ["#2f6fdf", "#e0661b", "#2a9d5c"];
const charts = [
  {id: "tokens", title: "Tokens per second", lines: ["generated", "prompt"], unit: ""},
  {id: "ttft", title: "Time to first token (ms)", lines: ["p50", "p99"], unit: " ms"},
  {id: "itl", title: "Inter-token latency (ms)", lines: ["p50", "p99"], unit: " ms"},
  {id: "requests", title: "Requests", lines: ["running", "waiting"], unit: ""},
  {id: "kv", title: "KV cache used (%)", lines: ["used"], unit: "%"},
  {id: "cpu", title: "CPU (%) and resident memory (MiB)", lines: ["cpu %", "MiB"], unit: ""},
];
const data = {};  // chart id -> line name -> [[t, v]]
for (const c of charts) {
  data[c.id] = {};
  for (const l of c.lines) data[c.id][l] = [];
  const div = document.createElement("div");
  div.className = "chart";
  div.innerHTML = `<h2>${c.title}</h2><div class="legend">` +
    c.lines.map((l, i) => `<span style="color:${COLORS[i]}">&#9632; ${l}</span>`).join("") +
    `</div><svg id="chart-${c.id}" viewBox="0 0 400 150" preserveAspectRatio="none"></svg>`;
  document.getElementById("charts").appendChild(div);
}

function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      for (const kv of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[kv[1]] = kv[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
      }
    }
    const v = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : parseFloat(m[3]);
    out.push({name: m[1], labels, value: v});
  }
  return out;
}
function total(samples, name) {
  let s = null;
  for (const x of samples) if (x.name === name) s = (s || 0) + x.value;
  return s;
}
function buckets(samples, name) {
  const byLe = new Map();
  for (const x of samples) {
    if (x.name !== name + "_bucket") continue;
    const le = x.labels.le === "+Inf" ? Infinity : parseFloat(x.labels.le);
    byLe.set(le, (byLe.get(le) || 0) + x.value);
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]);
}
function minus(now, before) {
  if (!before) return now;
  const old = new Map(before);
  return now.map(([le, c]) => [le, c - (old.get(le) || 0)]);
}
// As Prometheus's histogram_quantile: linear within the bucket holding the rank.
function quantile(b, q) {
  if (!b.length || b[b.length - 1][1] <= 0) return null;
  const rank = q * b[b.length - 1][1];
  for (let i = 0; i < b.length; i++) {
    if (b[i][1] < rank) continue;
    if (!isFinite(b[i][0])) return i > 0 ? b[i - 1][0] : 0;
    const lo = i > 0 ? b[i - 1][0] : 0, below = i > 0 ? b[i - 1][1] : 0;
    const inside = b[i][1] - below;
    return inside > 0 ? lo + (b[i][0] - lo) * (rank - below) / inside : b[i][0];
  }
  return null;
}
function fmt(v, digits) {
  if (v === null || v === undefined || !isFinite(v)) return "-";
  return v.toFixed(digits === undefined ? (Math.abs(v) >= 100 ? 0 : 1) : digits);
}
function push(chart, line, t, v) {
  if (v === null || !isFinite(v)) return;
  const pts = data[chart][line];
  pts.push([t, v]);
  while (pts.length && pts[0][0] < t - HISTORY) pts.shift();
}
function draw(now) {
  for (const c of charts) {
    const svg = document.getElementById("chart-" + c.id);
    let max = 0;
    for (const l of c.lines) for (const p of data[c.id][l]) max = Math.max(max, p[1]);
    max = max > 0 ? max * 1.1 : 1;
    let html = `<line class="axis" x1="0" y1="149" x2="400" y2="149"/>` +
      `<text class="lbl" x="2" y="10">${fmt(max)}${c.unit}</text>` +
      `<text class="lbl" x="2" y="146">-${HISTORY / 60} min</text>`;
    c.lines.forEach((l, i) => {
      const pts = data[c.id][l].map(([t, v]) =>
        `${(400 * (1 - (now - t) / HISTORY)).toFixed(1)},${(148 - 138 * v / max).toFixed(1)}`);
      if (pts.length) {
        html += `<polyline class="line" data-line="${l}" data-points="${pts.length}" ` +
          `fill="none" stroke="${COLORS[i]}" stroke-width="1.5" points="${pts.join(" ")}"/>`;
      }
    });
    svg.innerHTML = html;
  }
}

let prev = null;
async function poll() {
  const status = document.getElementById("status");
  try {
    const [m, h] = await Promise.all([fetch("/metrics"), fetch("/health")]);
    if (!m.ok) throw new Error("/metrics answered " + m.status);
    const samples = parseMetrics(await m.text());
    const health = await h.json().catch(() => ({}));
    const t = Date.now() / 1000;
    const cur = {
      t, samples,
      gen: total(samples, "slimlm_generation_tokens_total"),
      prompt: total(samples, "slimlm_prompt_tokens_total"),
      cpu: total(samples, "process_cpu_seconds_total"),
      ttft: buckets(samples, "slimlm_time_to_first_token_seconds"),
      itl: buckets(samples, "slimlm_inter_token_latency_seconds"),
    };
    document.getElementById("model").textContent = health.model || "";
    status.className = "";
    status.textContent = `${health.status || "?"} · ${location.host} · updated ` +
      new Date().toLocaleTimeString();
    const running = total(samples, "slimlm_num_requests_running");
    const waiting = total(samples, "slimlm_num_requests_waiting");
    const kv = 100 * total(samples, "slimlm_kv_cache_usage_ratio");
    const rss = total(samples, "process_resident_memory_bytes") / 1048576;
    push("requests", "running", t, running);
    push("requests", "waiting", t, waiting);
    push("kv", "used", t, kv);
    push("cpu", "MiB", t, rss);
    document.getElementById("stat-req").textContent = `${fmt(running, 0)} / ${fmt(waiting, 0)}`;
    document.getElementById("stat-kv").textContent = fmt(kv) + "%";
    let cpuPct = null;
    if (prev) {
      const dt = t - prev.t;
      const gen = (cur.gen - prev.gen) / dt, prompt = (cur.prompt - prev.prompt) / dt;
      cpuPct = 100 * (cur.cpu - prev.cpu) / dt;
      push("tokens", "generated", t, gen);
      push("tokens", "prompt", t, prompt);
      push("cpu", "cpu %", t, cpuPct);
      document.getElementById("stat-gen").textContent = fmt(gen);
      // Percentiles of what arrived since the last scrape (all history when nothing new).
      for (const [key, stat] of [["ttft", "stat-ttft"], ["itl", "stat-itl"]]) {
        let b = minus(cur[key], prev[key]);
        if (!b.length || b[b.length - 1][1] <= 0) b = cur[key];
        const p50 = quantile(b, 0.5), p99 = quantile(b, 0.99);
        push(key, "p50", t, p50 === null ? null : 1000 * p50);
        push(key, "p99", t, p99 === null ? null : 1000 * p99);
        document.getElementById(stat).textContent = p50 === null ? "-" :
          `${fmt(1000 * p50)} / ${fmt(1000 * p99)} ms`;
      }
    }
    document.getElementById("stat-cpu").textContent = `${fmt(cpuPct, 0)}% / ${fmt(rss, 0)} MiB`;
    prev = cur;
    draw(t);
  } catch (e) {
    status.className = "down";
    status.textContent = "server unreachable: " + e.message;
  }
  setTimeout(poll, POLL);
}
poll();
</script>
</body>
</html>
)HTML";
}

}  // namespace slimlm::serve
