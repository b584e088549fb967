// The tether dashboard page: reads /api/state once, then follows /api/events (SSE).
// Plain browser JavaScript on purpose: no build step, served as is.
"use strict";

const PALETTE = ["#2d6cdf", "#e8772e", "#1f9d55", "#c2399b", "#7a5af8", "#0fa3b1", "#d64545", "#8c6d1f", "#4b5563", "#93b829"];
const MAX_POINTS = 360;
const state = { points: [], latest: undefined, denials: [], source: "", error: undefined, intervalMs: 2000, lastAt: 0 };
const charts = {};
const $ = (id) => document.getElementById(id);

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
const pct = (x) => (x === undefined || x === null ? "–" : `${(x * 100).toFixed(x === 1 || x === 0 ? 0 : 2)}%`);
const rps = (x) => (x === undefined ? "–" : x.toFixed(x >= 100 ? 0 : 1));
function ms(seconds) {
  if (seconds === undefined || seconds === null) return "–";
  const v = seconds * 1000;
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ms`;
}
function duration(seconds) {
  if (seconds === undefined) return "–";
  const s = Math.abs(seconds);
  const text = s >= 86400 ? `${(s / 86400).toFixed(1)} d` : s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${Math.floor(s / 60)} min` : `${Math.floor(s)} s`;
  return seconds < 0 ? `expired ${text} ago` : text;
}
const windowText = () => (state.intervalMs >= 1000 ? `${+(state.intervalMs / 1000).toFixed(1)} s` : `${state.intervalMs} ms`);
const podKey = (p) => `${p.namespace}/${p.pod}`;
const direction = () => $("direction").value;
const quantile = () => $("quantile").value;

/** Every pod seen in the history, in a stable order, each with a stable colour. */
function podList() {
  const seen = new Map();
  for (const point of state.points) for (const p of point.pods) seen.set(podKey(p), p);
  return [...seen.values()].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.workload.localeCompare(b.workload) || a.pod.localeCompare(b.pod));
}
const colour = (i) => PALETTE[i % PALETTE.length];
/** A pod's colour is its place in the full pod list, so the table swatches match every chart. */
function colourOf(pod) {
  return colour(podList().findIndex((p) => podKey(p) === podKey(pod)));
}

const METRICS = {
  success: { el: "chart-success", value: (f) => (f.successRate === undefined ? null : f.successRate * 100), unit: "%", range: [0, 100] },
  rps: { el: "chart-rps", value: (f) => f.rps, unit: "rps" },
  latency: { el: "chart-latency", value: (f) => (f[quantile()] === undefined ? null : f[quantile()] * 1000), unit: "ms" },
};

function chartData(metric, pods) {
  const xs = state.points.map((p) => p.at / 1000);
  const series = pods.map((pod) =>
    state.points.map((point) => {
      const p = point.pods.find((q) => podKey(q) === podKey(pod));
      if (!p || p.error) return null;
      return metric.value(p[direction()]);
    }),
  );
  return [xs, ...series];
}

function makeChart(name, pods) {
  const metric = METRICS[name];
  const el = $(metric.el);
  el.innerHTML = "";
  const opts = {
    width: Math.max(el.clientWidth, 280),
    height: 230,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: metric.range ? { range: metric.range } : { range: (_u, min, max) => [0, Math.max(max * 1.15, metric.unit === "ms" ? 1 : 1)] } },
    axes: [
      { stroke: "#6b7588", grid: { stroke: "#eef1f6" }, ticks: { stroke: "#e3e7ee" } },
      { stroke: "#6b7588", grid: { stroke: "#eef1f6" }, ticks: { stroke: "#e3e7ee" }, size: 52, values: (_u, vals) => vals.map((v) => `${+v.toFixed(2)}${metric.unit === "%" ? "%" : ""}`) },
    ],
    legend: { live: true },
    series: [{}, ...pods.map((p) => ({ label: p.pod, stroke: colourOf(p), width: 2, points: { show: false }, value: (_u, v) => (v === null || v === undefined ? "–" : `${v.toFixed(metric.unit === "rps" ? 1 : 2)} ${metric.unit}`) }))],
  };
  return { chart: new uPlot(opts, chartData(metric, pods), el), keys: pods.map(podKey).join("|") };
}

/** Pods that had traffic in the chosen direction at some point of the history (a pure client serves nothing inbound). */
function chartedPods() {
  const dir = direction();
  const busy = new Set();
  for (const point of state.points) for (const p of point.pods) if (!p.error && p[dir].requests > 0) busy.add(podKey(p));
  return podList().filter((p) => busy.has(podKey(p)));
}

function renderCharts() {
  const pods = chartedPods();
  const keys = pods.map(podKey).join("|");
  for (const name of Object.keys(METRICS)) {
    const current = charts[name];
    if (!current || current.keys !== keys) {
      current?.chart.destroy();
      charts[name] = makeChart(name, pods);
    } else {
      current.chart.setData(chartData(METRICS[name], pods));
    }
  }
  $("latency-title").textContent = `${quantile()}, ms, per pod`;
}

function resizeCharts() {
  for (const name of Object.keys(charts)) {
    const el = $(METRICS[name].el);
    charts[name].chart.setSize({ width: Math.max(el.clientWidth, 280), height: 230 });
  }
}

function renderCards() {
  const pods = state.latest?.pods ?? [];
  const dir = direction();
  let rate = 0, requests = 0, tls = 0, succ = 0, resp = 0;
  for (const p of pods) {
    const f = p[dir];
    rate += f.rps;
    requests += f.requests;
    if (f.mtlsShare !== undefined) tls += f.mtlsShare * f.requests;
    if (f.successRate !== undefined) {
      // Weight each pod's success rate by its requests to get the mesh-wide figure.
      succ += f.successRate * f.requests;
      resp += f.requests;
    }
  }
  const reporting = pods.filter((p) => !p.error).length;
  const denied = state.denials.reduce((n, d) => n + d.count, 0);
  const cards = [
    ["Proxies reporting", `${reporting} / ${pods.length}`, reporting === pods.length ? "" : "warn"],
    [`Requests/s (${dir})`, rps(rate), ""],
    ["Success rate", resp ? pct(succ / resp) : "–", resp && succ / resp < 0.95 ? "bad" : "ok"],
    ["mTLS share", requests ? pct(tls / requests) : "–", requests && tls < requests ? "warn" : "ok"],
    ["Recent denials", String(denied), denied ? "bad" : "ok"],
  ];
  $("cards").innerHTML = cards.map(([k, v, cls]) => `<div class="card"><div class="k">${esc(k)}</div><div class="v ${cls}">${esc(v)}</div></div>`).join("");
}

function successClass(x) {
  return x === undefined ? "muted" : x >= 0.99 ? "ok" : x >= 0.95 ? "warn" : "bad";
}

function renderPods() {
  const pods = podList();
  const latest = new Map((state.latest?.pods ?? []).map((p) => [podKey(p), p]));
  const certs = new Map((state.latest?.certificates ?? []).map((c) => [`${c.namespace}/${c.pod}`, c]));
  const dir = direction();
  $("pods-caption").textContent = `${dir} traffic over the last ${windowText()}`;
  if (!pods.length) {
    $("pods").innerHTML = `<div class="empty">No proxies yet${state.error ? `: ${esc(state.error)}` : ""}</div>`;
    return;
  }
  const rows = pods.map((pod, i) => {
    const p = latest.get(podKey(pod));
    const f = p?.[dir];
    const cert = certs.get(podKey(pod));
    const err = !p ? "gone" : p.error;
    return `<tr data-pod="${esc(podKey(pod))}">
      <td><span class="swatch" style="background:${colour(i)}"></span>${esc(pod.namespace)}/<b>${esc(pod.pod)}</b></td>
      <td>${esc(pod.workload)}</td>
      <td class="num ${successClass(f?.successRate)}">${err ? "–" : pct(f.successRate)}</td>
      <td class="num rps">${err ? "–" : rps(f.rps)}</td>
      <td class="num">${err ? "–" : ms(f.p50)}</td><td class="num">${err ? "–" : ms(f.p95)}</td><td class="num">${err ? "–" : ms(f.p99)}</td>
      <td class="num">${err ? "–" : f.tcpConnections}</td>
      <td class="num ${f && f.mtlsShare !== undefined && f.mtlsShare < 1 ? "warn" : ""}">${err ? "–" : pct(f.mtlsShare)}</td>
      <td class="num">${duration(cert?.remaining)}</td>
      <td class="${err ? "bad" : "muted"}">${esc(err ?? "ok")}</td></tr>`;
  });
  $("pods").innerHTML = `<table><thead><tr><th>Pod</th><th>Workload</th><th class="num">Success</th><th class="num">RPS</th>
    <th class="num">p50</th><th class="num">p95</th><th class="num">p99</th><th class="num">TCP</th><th class="num">mTLS</th><th class="num">Cert expires</th><th>Scrape</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table>`;
}

/** A short form of a tether identity: "sa.ns" from "sa.ns.serviceaccount.identity.tether.<domain>". */
function shortId(id) {
  const m = /^([^.]+)\.([^.]+)\.serviceaccount\.identity\./.exec(id ?? "");
  return m ? `${m[1]}.${m[2]}` : id ?? "";
}

function renderEdges() {
  const edges = state.latest?.edges ?? [];
  if (!edges.length) {
    $("edges").innerHTML = `<div class="empty">No traffic between proxies in the last window</div>`;
    return;
  }
  const nodes = new Map();
  const node = (end) => {
    if (!nodes.has(end.label)) nodes.set(end.label, { label: end.label, ids: new Set(), in: [], out: [], layer: 0 });
    return nodes.get(end.label);
  };
  for (const e of edges) {
    const s = node(e.src), d = node(e.dst);
    s.out.push(d); d.in.push(s);
    e.clientIdentities.forEach((id) => s.ids.add(id));
    e.serverIdentities.forEach((id) => d.ids.add(id));
  }
  // Layers by longest path from the callers that nobody calls (bounded, so cycles terminate).
  for (let pass = 0; pass < nodes.size; pass++) {
    for (const n of nodes.values()) for (const m of n.out) if (m !== n && m.layer < n.layer + 1 && n.layer + 1 < nodes.size) m.layer = n.layer + 1;
  }
  const layers = [];
  for (const n of nodes.values()) (layers[n.layer] ??= []).push(n);
  const W = 230, H = 46, GX = 200, GY = 26, PAD = 14;
  const columns = layers.filter(Boolean);
  const tallest = Math.max(...columns.map((c) => c.length));
  const width = PAD * 2 + columns.length * W + (columns.length - 1) * GX;
  const height = PAD * 2 + tallest * H + (tallest - 1) * GY;
  columns.forEach((col, ci) => {
    const offset = (height - (col.length * H + (col.length - 1) * GY)) / 2;
    col.sort((a, b) => a.label.localeCompare(b.label)).forEach((n, ri) => {
      n.x = PAD + ci * (W + GX);
      n.y = offset + ri * (H + GY);
    });
  });
  // Edges into the same destination put their labels at different points along the curve, so
  // labels of converging edges do not sit on top of each other.
  for (const n of nodes.values()) {
    n.outs = [...new Set(n.out)].sort((a, b) => a.y - b.y);
    n.ins = [...new Set(n.in)].sort((a, b) => a.y - b.y);
  }
  const intoSame = new Map();
  const paths = edges.map((e) => {
    const s = nodes.get(e.src.label), d = nodes.get(e.dst.label);
    // Several edges leaving or entering one box spread over its side, ordered by the other end.
    const slot = (list, other) => (list.indexOf(other) + 1) / (list.length + 1);
    const x1 = s.x + W, y1 = s.y + H * slot(s.outs, d), x2 = d.x, y2 = d.y + H * slot(d.ins, s);
    const mx = (x1 + x2) / 2;
    const nth = intoSame.get(d) ?? 0;
    intoSame.set(d, nth + 1);
    const t = [0.5, 0.25, 0.75, 0.38, 0.62][nth % 5];
    const bez = (a, b) => (1 - t) ** 3 * a + 3 * (1 - t) ** 2 * t * mx + 3 * (1 - t) * t ** 2 * mx + t ** 3 * b;
    const by = (1 - t) ** 3 * y1 + 3 * (1 - t) ** 2 * t * y1 + 3 * (1 - t) * t ** 2 * y2 + t ** 3 * y2;
    const lx = bez(x1, x2), ly = by - 6;
    const cls = e.mtls ? "ok" : "bad";
    const colourOf = e.mtls ? "#1f9d55" : "#d64545";
    const path = s === d
      ? `M ${s.x + W - 30} ${s.y} C ${s.x + W} ${s.y - 40}, ${s.x + W + 40} ${s.y + 10}, ${s.x + W} ${s.y + 12}`
      : `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2 - 6} ${y2}`;
    const title = `${e.src.label} → ${e.dst.label}\nclient: ${e.clientIdentities.join(", ") || "unknown"}\nserver: ${e.serverIdentities.join(", ") || "unknown"}\n${e.mtls ? "mTLS" : "NOT mTLS"} · seen by ${e.seenBy}`;
    return `<g class="edge ${cls}"><title>${esc(title)}</title>
      <path d="${path}" fill="none" stroke="${colourOf}" stroke-width="${Math.min(1.5 + Math.log10(1 + e.rps) * 1.5, 5).toFixed(1)}" ${e.mtls ? "" : 'stroke-dasharray="6 4"'} marker-end="url(#arrow-${cls})"/>
      <text class="edge-label" x="${lx.toFixed(1)}" y="${ly.toFixed(1)}" text-anchor="middle">${rps(e.rps)} rps · ${e.mtls ? "mTLS" : "plaintext"}</text></g>`;
  });
  const boxes = [...nodes.values()].map((n) => {
    const ids = [...n.ids];
    const idText = ids.length ? ids.map(shortId).join(", ") : "identity unknown";
    return `<g class="node" transform="translate(${n.x},${n.y})"><title>${esc(n.label)}\n${esc(ids.join("\n") || "identity unknown")}</title>
      <rect width="${W}" height="${H}"></rect>
      <text class="name" x="10" y="19">${esc(n.label.length > 30 ? n.label.slice(0, 29) + "…" : n.label)}</text>
      <text class="id" x="10" y="36">id: ${esc(idText.length > 36 ? idText.slice(0, 35) + "…" : idText)}</text></g>`;
  });
  // Arrow heads in user space, so a thick (busy) edge does not get a giant arrow.
  const marker = (name, fill) => `<marker id="arrow-${name}" viewBox="0 0 10 10" refX="8" refY="5" markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="${fill}"/></marker>`;
  $("edges").innerHTML = `<svg viewBox="0 0 ${width} ${height}" style="max-height:${Math.max(height, 120)}px"><defs>${marker("ok", "#1f9d55")}${marker("bad", "#d64545")}</defs>${paths.join("")}${boxes.join("")}</svg>`;
}

function renderCerts() {
  const certs = state.latest?.certificates ?? [];
  if (!certs.length) {
    $("certs").innerHTML = `<div class="empty">No proxies yet</div>`;
    return;
  }
  const DAY = 86400;
  const rows = certs.map((c) => {
    const share = c.remaining === undefined ? 0 : Math.max(0, Math.min(1, c.remaining / DAY));
    const cls = c.remaining === undefined || c.remaining <= 0 ? "bad" : c.remaining < 3600 ? "warn" : "ok";
    const fill = cls === "ok" ? "#1f9d55" : cls === "warn" ? "#d98a00" : "#d64545";
    return `<tr><td>${esc(c.namespace)}/<b>${esc(c.pod)}</b></td><td class="muted" title="${esc(c.identity ?? "")}">${esc(shortId(c.identity) || "–")}</td>
      <td><span class="bar"><span style="width:${(share * 100).toFixed(0)}%;background:${fill}"></span></span><span class="${cls}">${c.remaining === undefined ? "no certificate" : duration(c.remaining)}</span></td></tr>`;
  });
  $("certs").innerHTML = `<table><thead><tr><th>Pod</th><th>Identity</th><th>Expires in</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

/** Denials grouped by who was refused where, newest first: one row per (pod, port, client, reason). */
function renderDenials() {
  const groups = new Map();
  for (const d of state.denials) {
    const key = [d.namespace, d.pod, d.port, d.clientIdentity, d.reason, d.authorization, d.route].join("\u0000");
    const g = groups.get(key) ?? { ...d, count: 0, first: d.at, last: d.at };
    g.count += d.count;
    g.first = Math.min(g.first, d.at);
    g.last = Math.max(g.last, d.at);
    groups.set(key, g);
  }
  const list = [...groups.values()].sort((a, b) => b.last - a.last);
  if (!list.length) {
    $("denials").innerHTML = `<div class="empty">No authorization denials recently</div>`;
    return;
  }
  const time = (t) => new Date(t).toLocaleTimeString();
  const rows = list.map((d) => `<tr><td>${esc(time(d.last))}</td><td class="muted">${esc(time(d.first))}</td><td>${esc(d.namespace)}/<b>${esc(d.pod)}</b></td>
    <td>${esc(d.port)}</td><td>${esc(d.clientIdentity || "no identity")}</td><td><span class="pill bad">${esc(d.reason || "denied")}</span></td>
    <td class="muted">${esc(d.authorization || d.route || "–")}</td><td class="num">${d.count}</td></tr>`);
  $("denials").innerHTML = `<table><thead><tr><th>Last seen</th><th>First seen</th><th>Pod</th><th>Port</th><th>Client identity</th><th>Reason</th><th>Rule</th><th class="num">Count</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function renderStatus() {
  const dot = $("status-dot");
  if (state.error) {
    dot.className = "dot err";
    $("status").textContent = `error: ${state.error}`;
  } else if (!state.lastAt) {
    dot.className = "dot";
    $("status").textContent = "waiting for the second scrape…";
  } else {
    const age = Math.max(0, Math.round((Date.now() - state.lastAt) / 1000));
    dot.className = age * 1000 > state.intervalMs * 3 ? "dot" : "dot live";
    $("status").textContent = `live · updated ${age}s ago`;
  }
  $("source").textContent = `Source: ${state.source}. Figures per window of ${windowText()}; charts keep the last ${MAX_POINTS} windows.`;
}

function render() {
  renderStatus();
  renderCards();
  renderCharts();
  renderPods();
  renderEdges();
  renderCerts();
  renderDenials();
}

function onEvent(event) {
  if (event.error) {
    state.error = event.error;
  } else {
    state.error = undefined;
    state.points.push({ at: event.snapshot.at, pods: event.snapshot.pods });
    if (state.points.length > MAX_POINTS) state.points.splice(0, state.points.length - MAX_POINTS);
    state.latest = event.snapshot;
    state.denials = event.denials;
    state.lastAt = event.snapshot.at;
  }
  render();
}

async function start() {
  const res = await fetch("/api/state");
  const initial = await res.json();
  Object.assign(state, { points: initial.points, latest: initial.latest, denials: initial.denials, source: initial.source, error: initial.error, intervalMs: initial.intervalMs, lastAt: initial.latest?.at ?? 0 });
  render();
  const events = new EventSource("/api/events");
  events.addEventListener("snapshot", (e) => onEvent(JSON.parse(e.data)));
  events.onerror = () => {
    $("status-dot").className = "dot err";
    $("status").textContent = "disconnected; retrying…";
  };
  $("direction").addEventListener("change", render);
  $("quantile").addEventListener("change", () => {
    for (const c of Object.values(charts)) c.chart.destroy();
    for (const k of Object.keys(charts)) delete charts[k];
    render();
  });
  window.addEventListener("resize", resizeCharts);
  setInterval(renderStatus, 1000);
}

// Exposed for the browser test and for poking at in the console.
window.tetherDashboard = { state, charts };
start().catch((err) => {
  $("status-dot").className = "dot err";
  $("status").textContent = `cannot load: ${err.message}`;
});
