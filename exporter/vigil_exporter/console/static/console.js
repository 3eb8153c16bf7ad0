// vigil console: polls the exporter's JSON API and draws it. Plain JS, no framework, no build.
//
// Every string from the API is untrusted (log messages, alert labels, span metadata): the DOM
// is built with createElement and textContent only (the page's CSP enforces Trusted Types, so
// an innerHTML assignment would throw). URLs are relative: the console works under a mount.
"use strict";

(() => {
  const params = new URLSearchParams(window.location.search);
  // ?refresh=MS sets the polling period (250 ms .. 60 s; default 3 s).
  const REFRESH_MS = Math.min(60000, Math.max(250, Number(params.get("refresh")) || 3000));
  const TIMEOUT_MS = Math.max(2000, REFRESH_MS * 2);  // one request's deadline
  const STALE_MS = REFRESH_MS * 2 + TIMEOUT_MS;  // no complete refresh for this long: stale
  const LIMITS = { alerts: 50, deadLetters: 100, logs: 200, traces: 200, traceLogs: 500 };
  const HEX_ID = /^[0-9a-f]{16}([0-9a-f]{16})?$/i;  // a span id or a W3C trace id

  // A breaker state (any case, "-" or "_") -> the word shown and its colour class.
  const STATES = {
    closed: { word: "closed", tone: "ok" },
    open: { word: "open", tone: "bad" },
    half_open: { word: "half-open", tone: "warn" },
    forced_open: { word: "forced open", tone: "forced" },
    disabled: { word: "disabled", tone: "off" },
    metrics_only: { word: "metrics only", tone: "info" },
  };

  // --- DOM helpers: textContent only -------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "text") node.textContent = String(value);
      else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  // Replace a container's children, keeping keyboard focus on the element with the same
  // data-focus-key (a refresh must not throw the reader's focus away).
  function replace(container, ...children) {
    const focused = document.activeElement;
    const key = focused && container.contains(focused) ? focused.dataset.focusKey : undefined;
    container.replaceChildren();
    append(container, children);
    if (key !== undefined) {
      for (const node of container.querySelectorAll("[data-focus-key]")) {
        if (node.dataset.focusKey === key) { node.focus(); break; }
      }
    }
  }

  function traceLink(id, label) {
    if (typeof id !== "string" || !HEX_ID.test(id)) return id ? el("span", { text: id }) : "";
    return el("a", { href: "#/trace/" + id.toLowerCase(), class: "trace-link mono",
                     dataset: { focusKey: "trace:" + id }, title: "open trace " + id },
              label || id.slice(0, 8) + "...");
  }

  function badge(text, tone, title) {
    return el("span", { class: "badge tone-" + tone, title: title || null }, text);
  }

  function table(headers, rows, caption) {
    if (!rows.length) return el("p", { class: "empty" }, caption || "nothing yet");
    return el("table", {},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows));
  }

  // --- formatting ---------------------------------------------------------------------------

  const fmtNumber = (n) => (n === null || n === undefined ? "-" : Number(n).toLocaleString("en"));

  function fmtMs(ms) {
    if (ms === null || ms === undefined || !isFinite(ms)) return "-";
    if (ms >= 10000) return (ms / 1000).toFixed(1) + " s";
    if (ms >= 100) return Math.round(ms) + " ms";
    if (ms >= 1) return ms.toFixed(1) + " ms";
    return ms.toFixed(3) + " ms";
  }

  function fmtTime(iso) {
    const t = Date.parse(iso);
    if (!isFinite(t)) return el("span", { text: String(iso || "") });
    const d = new Date(t);
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    const text = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.` +
      pad(d.getMilliseconds(), 3);
    return el("time", { datetime: iso, title: iso, class: "mono" }, text);
  }

  function fmtAgo(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` :
      `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }

  const stateOf = (raw) => {
    const key = String(raw || "").trim().toLowerCase().replace(/-/g, "_");
    return { key, ...(STATES[key] || { word: key || "unknown", tone: "off" }) };
  };

  const SEVERITY_TONES = { critical: "forced", high: "bad", medium: "warn", low: "info" };
  const LEVEL_TONES = { DEBUG: "off", INFO: "info", WARNING: "warn", ERROR: "bad", CRITICAL: "forced" };

  // --- fetching -----------------------------------------------------------------------------

  class HttpError extends Error {  // the exporter answered, with an error status
    constructor(status, message) { super(message); this.status = status; }
  }

  class NetworkError extends Error {}  // no answer: refused, reset, or past the deadline

  // The API's URLs, relative to the page, without the user:password@ a URL may carry (fetch
  // refuses those; the browser sends the basic credentials it was given for the page itself).
  const BASE = new URL(".", document.baseURI);
  BASE.username = "";
  BASE.password = "";

  async function getJSON(path) {
    const url = new URL(path, BASE);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
    let response, text;
    try {
      response = await fetch(url, { cache: "no-store", credentials: "same-origin",
                                    headers: { Accept: "application/json" },
                                    signal: abort.signal });
      text = await response.text();
    } catch (err) {
      throw new NetworkError(abort.signal.aborted ? `no answer within ${TIMEOUT_MS / 1000} s`
                                                  : String(err.message || err));
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) {
      let message = text.slice(0, 200);
      try { message = JSON.parse(text).error || message; } catch (_) { /* not JSON */ }
      throw new HttpError(response.status, message);
    }
    return { text, data: JSON.parse(text) };
  }

  // --- state --------------------------------------------------------------------------------

  const state = {
    paused: false,
    lastOk: 0,            // Date.now() of the last complete refresh
    failure: null,        // {kind: "unreachable"|"auth"|"http", message, since}
    probeAt: new Map(),   // breaker name -> Date.now() + seconds_until_probe
    seen: new Map(),      // section -> the response text last drawn (skip identical redraws)
    logs: [],
    expanded: new Set(),  // span ids whose details are open in the waterfall
    trace: null,          // the trace answer drawn in the waterfall
    again: false,         // a refresh was asked for while one ran
    timer: null,
    running: false,
  };

  function changed(section, ...texts) {
    const key = texts.join("\u0000");
    if (state.seen.get(section) === key) return false;
    state.seen.set(section, key);
    return true;
  }

  // --- breakers -----------------------------------------------------------------------------

  function sparkline(history) {
    // One column per bucket: calls that ran (blue) with the rejected ones stacked on top
    // (red); a bucket no sample reached has no column, an observed zero a flat tick.
    const width = 150, height = 32, pad = 1;
    const calls = history ? history.calls : [];
    const rejected = history ? history.rejected : [];
    const failures = history ? history.failures : [];
    const top = Math.max(1, ...calls.map((v, i) => (v || 0) + (rejected[i] || 0)));
    const box = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none",
                             class: "spark", role: "img" });
    const step = (width - 2 * pad) / Math.max(calls.length, 1);
    const scale = (v) => (v * (height - 2 * pad)) / top;
    calls.forEach((v, i) => {
      if (v === null) return;
      const x = (pad + i * step + 0.5).toFixed(1), w = Math.max(1, step - 1).toFixed(1);
      const ran = scale(v), refused = scale(rejected[i] || 0);
      if (!ran && !refused) {
        box.append(svg("rect", { class: "spark-zero", x, y: height - pad - 1, width: w, height: 1 }));
        return;
      }
      if (ran) box.append(svg("rect", { class: "spark-calls", x, y: (height - pad - ran).toFixed(1), width: w, height: ran.toFixed(1) }));
      if (refused) box.append(svg("rect", { class: "spark-rejected", x, y: (height - pad - ran - refused).toFixed(1), width: w, height: refused.toFixed(1) }));
    });
    const sum = (arr) => arr.reduce((a, v) => a + (v || 0), 0);
    const minutes = history ? (history.bucket_seconds * calls.length) / 60 : 0;
    const label = history
      ? `last ${minutes.toFixed(minutes < 2 ? 1 : 0)} min per ${history.bucket_seconds} s: ` +
        `${sum(calls)} calls (${sum(failures)} failed), ${sum(rejected)} rejected`
      : "no history yet";
    box.setAttribute("aria-label", label);
    box.append(svg("title", {}));
    box.lastChild.textContent = label;
    return el("figure", { class: "spark-box" }, box, el("figcaption", { class: "muted" }, label));
  }

  function healthCircle(st) {
    const box = svg("svg", { viewBox: "0 0 24 24", width: 24, height: 24, class: "circle tone-" + st.tone,
                             "aria-hidden": "true" });
    box.append(svg("circle", { cx: 12, cy: 12, r: 9 }));
    return box;
  }

  function renderBreakers(list, historyList) {
    const history = new Map(historyList.map((h) => [h.name, h]));
    const now = Date.now();
    state.probeAt.clear();
    let open = 0;
    const cards = list.map((b) => {
      const st = stateOf(b.state);
      if (st.tone === "bad" || st.tone === "forced") open += 1;
      const counts = b.counts || {};
      const rate = typeof b.failure_rate === "number" ? `${Math.round(b.failure_rate * 100)} %` : null;
      const probe = el("span", { class: "probe", dataset: { probe: b.name } });
      if (b.seconds_until_probe > 0) state.probeAt.set(b.name, now + b.seconds_until_probe * 1000);
      return el("article", { class: "card breaker tone-" + st.tone,
                             dataset: { breaker: b.name, state: st.key } },
        el("header", {}, healthCircle(st),
           el("h3", { class: "name" }, b.name),
           badge(st.word, st.tone, "state: " + String(b.state))),
        el("dl", { class: "facts" },
          el("dt", {}, "failures in a row"), el("dd", {}, fmtNumber(b.failure_count)),
          rate ? [el("dt", {}, "failure rate"), el("dd", {}, rate)] : null,
          el("dt", {}, "calls"), el("dd", {}, fmtNumber((counts.success || 0) + (counts.slow || 0) +
                                                    (counts.failure || 0) + (counts.ignored || 0))),
          el("dt", {}, "rejected"), el("dd", {}, fmtNumber(counts.rejected || 0))),
        probe,
        sparkline(history.get(b.name)));
    });
    replace($("breaker-list"), cards.length ? cards :
      el("p", { class: "empty" }, "No circuit breakers yet: they appear once named breakers exist."));
    document.title = open ? `(${open} open) vigil console` : "vigil console";
    tickProbes();
  }

  function tickProbes() {
    const now = Date.now();
    for (const node of document.querySelectorAll("[data-probe]")) {
      const at = state.probeAt.get(node.dataset.probe);
      node.textContent = at === undefined ? "" :
        at > now ? `next probe in ${Math.ceil((at - now) / 1000)} s` : "probe due";
    }
  }

  // --- alerts -------------------------------------------------------------------------------

  function alertTraceId(a) {
    for (const source of [a.metadata, a.labels, a.annotations]) {
      const id = source && source.trace_id;
      if (typeof id === "string" && HEX_ID.test(id)) return id;
    }
    return null;
  }

  function deliveryOf(a, deliveries, dead) {
    if (a.source !== "alertmanager") return badge("in process", "off", "an application alert: handed to the handlers in this process");
    if (dead.has(a.id)) return badge("dead-lettered", "bad", "handler " + dead.get(a.id) + " gave up on it (GET api/deliveries)");
    if (!deliveries) return badge("unknown", "off", "the alert store did not answer");
    const open = deliveries.open_alert_ids || [];
    if (open.includes(a.id)) {
      return badge("pending", "warn", "a handler has not finished it yet (GET api/deliveries)");
    }
    if (deliveries.pending_alerts > open.length) {  // more wait than the answer lists
      return badge("unknown", "off", `${deliveries.pending_alerts} alerts wait in the store; ` +
        `the newest ${open.length} are listed and this is not one of them`);
    }
    return badge("delivered", "ok", "every handler finished it");
  }

  function renderAlerts(alerts, deliveries) {
    const dead = new Map();
    for (const d of (deliveries && deliveries.recent_dead_letters) || []) dead.set(d.alert_id, d.handler);
    const rows = alerts.map((a) => {
      const name = (a.labels && a.labels.alertname) || a.component;
      return el("tr", { dataset: { alert: a.id, status: a.status, source: a.source } },
        el("td", {}, fmtTime(a.timestamp)),
        el("td", {}, badge(a.status, a.status === "firing" ? "bad" : "ok")),
        el("td", {}, badge(a.severity, SEVERITY_TONES[a.severity] || "off")),
        el("td", { class: "msg" }, el("strong", {}, name), " ", a.message,
           a.count > 1 ? el("span", { class: "muted" }, ` (x${a.count})`) : null),
        el("td", {}, a.source),
        el("td", {}, deliveryOf(a, deliveries, dead)),
        el("td", {}, traceLink(alertTraceId(a))));
    });
    replace($("alert-list"), table(["when", "status", "severity", "alert", "source", "delivery", "trace"],
                                   rows, "No alerts yet."));
    replace($("delivery-summary"), deliveries ?
      `(store: ${deliveries.pending_alerts} pending, ${deliveries.dead_letters} dead-lettered)` : "");
  }

  // --- functions ----------------------------------------------------------------------------

  function renderFunctions(rows) {
    replace($("function-list"), table(["function", "calls", "errors", "error %", "p50", "p95", "p99"],
      rows.map((f) => el("tr", { dataset: { function: f.name } },
        el("td", { class: "mono" }, f.name),
        el("td", { class: "num" }, fmtNumber(f.calls)),
        el("td", { class: "num" }, fmtNumber(f.errors)),
        el("td", { class: "num" + (f.error_rate > 0.1 ? " tone-text-bad" : "") },
           f.error_rate === null ? "-" : (f.error_rate * 100).toFixed(1)),
        el("td", { class: "num" }, fmtMs(f.p50)),
        el("td", { class: "num" }, fmtMs(f.p95)),
        el("td", { class: "num" }, fmtMs(f.p99)))),
      "No @monitor_performance functions yet."));
  }

  // --- logs ---------------------------------------------------------------------------------

  function logQuery() {
    const query = new URLSearchParams({ limit: String(LIMITS.logs) });
    const level = $("log-level").value;
    const component = $("log-component").value.trim();
    if (level) query.set("level", level);
    if (component) query.set("component", component);
    return "api/logs?" + query;
  }

  function logRows(entries) {
    return entries.map((line) => el("tr", { dataset: { level: line.level, trace: line.trace_id || "" } },
      el("td", {}, fmtTime(line.timestamp)),
      el("td", {}, badge(line.level, LEVEL_TONES[line.level] || "off")),
      el("td", { class: "mono" }, line.component),
      el("td", { class: "msg" }, line.message,
         line.exception ? el("span", { class: "muted" }, " ", String(line.exception.type || "exception")) : null),
      el("td", {}, traceLink(line.trace_id))));
  }

  function renderLogs(entries) {
    state.logs = entries;
    const wanted = $("log-trace").value.trim().toLowerCase();
    const shown = wanted ? entries.filter((l) => String(l.trace_id || "").toLowerCase().startsWith(wanted)) : entries;
    replace($("log-list"), table(["time", "level", "component", "message", "trace"], logRows(shown),
                                 wanted ? "No recent line of that trace." : "No log lines yet."));
    const components = [...new Set(entries.map((l) => l.component))].sort();
    replace($("log-components"), components.map((c) => el("option", { value: c })));
  }

  // --- traces -------------------------------------------------------------------------------

  function renderTraces(entries) {
    const byTrace = new Map();
    for (const e of entries) {
      if (!byTrace.has(e.trace_id)) byTrace.set(e.trace_id, []);
      byTrace.get(e.trace_id).push(e);
    }
    const rows = [...byTrace.entries()].map(([id, spans]) => {
      const ids = new Set(spans.map((s) => s.id));
      const start = Math.min(...spans.map((s) => Date.parse(s.start)));
      const end = Math.max(...spans.map((s) => Date.parse(s.start) + (s.duration_ms || 0)));
      const root = spans.filter((s) => !s.parent_id || !ids.has(s.parent_id))
        .sort((a, b) => Date.parse(a.start) - Date.parse(b.start))[0];
      const failed = spans.some((s) => s.status === "error");
      return { id, spans, start, end, root, failed };
    }).sort((a, b) => b.start - a.start);
    replace($("trace-list"), table(["trace", "root operation", "spans", "duration", "status", "started"],
      rows.map((t) => el("tr", { dataset: { traceRow: t.id } },
        el("td", {}, traceLink(t.id)),
        el("td", { class: "mono" }, `${t.root.component}.${t.root.operation}`),
        el("td", { class: "num" }, t.spans.length),
        el("td", { class: "num" }, fmtMs(t.end - t.start)),
        el("td", {}, t.failed ? badge("error", "bad") : badge("ok", "ok")),
        el("td", {}, fmtTime(t.root.start)))),
      "No completed traces yet."));
  }

  // The span tree in display order, each span with its offset from the trace's start (ms).
  // Starts come with millisecond precision and durations finer, so a child is kept inside its
  // parent's bar (as a synchronous child is), and a sibling that started in the same
  // millisecond as the previous one goes after it when both fit in the parent (sequential
  // calls; concurrent ones do not fit and overlap): a sub-millisecond trace still draws sensibly.
  function flatten(roots) {
    const rows = [];
    const t0 = Math.min(...roots.map((r) => Date.parse(r.start)));
    const walk = (node, depth, parent, previous) => {
      const raw = Date.parse(node.start) - t0;
      const duration = node.duration_ms || 0;
      let offset = raw;
      if (parent) {
        let lo = parent.offset;
        const hi = parent.node.duration_ms === null ? Infinity : lo + parent.node.duration_ms - duration;
        const after = previous ? previous.offset + previous.duration : null;
        if (after !== null && raw - previous.raw <= 1 && after <= hi) lo = Math.max(lo, after);
        offset = hi >= lo ? Math.min(Math.max(raw, lo), hi) : lo;
      }
      const row = { node, depth, offset, duration, raw };
      rows.push(row);
      const children = [...(node.children || [])].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
      let last = null;
      for (const child of children) last = walk(child, depth + 1, row, last);
      return row;
    };
    for (const root of roots) walk(root, 0, null, null);
    return rows;
  }

  function details(node) {
    const facts = [["span id", node.id], ["parent", node.parent_id || "-"], ["start", node.start],
                   ["end", node.end || "still running"], ["process", `pid ${node.pid} on ${node.host}`]];
    if (node.error) facts.push(["error", `${node.error.type || "error"}: ${node.error.message}`]);
    for (const [key, value] of Object.entries(node.metadata || {})) {
      facts.push(["metadata." + key, typeof value === "string" ? value : JSON.stringify(value)]);
    }
    return el("dl", { class: "span-details" }, facts.map(([k, v]) => [el("dt", {}, k), el("dd", { class: "mono" }, v)]));
  }

  function toggleSpan(id) {
    if (!state.expanded.delete(id)) state.expanded.add(id);
    if (state.trace) renderWaterfall(state.trace);
  }

  function renderWaterfall(answer) {
    state.trace = answer;
    const roots = answer.roots || [answer];  // a W3C trace id, or one entry's tree
    const rows = flatten(roots);
    const total = Math.max(0.001, ...rows.map((r) => r.offset + r.duration));
    const errors = rows.filter((r) => r.node.status === "error").length;
    replace($("trace-summary"), `${rows.length} spans, ${fmtMs(total)}` +
      (errors ? `, ${errors} failed` : "") + (answer.truncated ? " (truncated: the answer's byte budget left roots out)" : ""));
    const list = el("ol", { class: "waterfall", role: "list" });
    for (const { node, depth, offset, duration } of rows) {
      const open = state.expanded.has(node.id);
      const bar = el("span", { class: "bar tone-" + (node.status === "error" ? "bad" : node.status === "active" ? "warn" : "ok") });
      const width = Math.max(0.4, (duration / total) * 100);
      bar.style.marginLeft = `${Math.min(100 - width, (offset / total) * 100)}%`;
      bar.style.width = `${width}%`;
      const toggle = el("button", { type: "button", class: "span-toggle", "aria-expanded": String(open),
                                    dataset: { focusKey: "span:" + node.id },
                                    on: { click: () => toggleSpan(node.id) } },
        el("span", { class: "span-name mono" }, `${node.component}.${node.operation}`));
      toggle.style.paddingLeft = `${0.4 + depth * 1.1}rem`;
      const item = el("li", { class: "span-row", dataset: { span: node.id, depth: String(depth), status: node.status } },
        el("div", { class: "span-line" }, toggle,
           el("span", { class: "track" }, bar),
           el("span", { class: "num span-ms" }, fmtMs(node.duration_ms)),
           badge(node.status, node.status === "error" ? "bad" : node.status === "active" ? "warn" : "ok")),
        open ? details(node) : null,
        node.truncated ? el("p", { class: "muted" }, "deeper spans left out (tree depth limit)") : null);
      list.append(item);
    }
    replace($("waterfall"), list);
  }

  // --- views and the refresh loop -----------------------------------------------------------

  function currentTrace() {
    const match = /^#\/trace\/([0-9a-fA-F]+)$/.exec(window.location.hash);
    return match && HEX_ID.test(match[1]) ? match[1].toLowerCase() : null;
  }

  function showView() {
    const trace = currentTrace();
    $("overview").hidden = trace !== null;
    $("trace-view").hidden = trace === null;
    if (trace !== null) {
      replace($("trace-title"), "Trace ", el("span", { class: "mono" }, trace));
      replace($("waterfall"), el("p", { class: "empty" }, "loading..."));
      replace($("trace-logs"));
      replace($("trace-summary"));
      state.seen.delete("trace");
      state.expanded.clear();
      state.trace = null;
      $("back").focus();
    }
    window.scrollTo(0, 0);
  }

  async function section(name, urls, draw, optional) {
    const results = await Promise.allSettled(urls.map(getJSON));
    const failed = results.find((r) => r.status === "rejected");
    const required = optional ? results.slice(0, urls.length - optional) : results;
    const failedRequired = required.find((r) => r.status === "rejected");
    if (failedRequired) throw failedRequired.reason;
    const values = results.map((r) => (r.status === "fulfilled" ? r.value : null));
    if (changed(name, ...values.map((v) => (v ? v.text : "")))) draw(...values.map((v) => (v ? v.data : null)));
    return failed ? failed.reason : null;
  }

  async function refresh() {
    if (state.running) { state.again = true; return; }
    clearTimeout(state.timer);
    if (document.hidden && state.lastOk) {  // a background tab asks nothing; see start()
      if (!state.paused) state.timer = setTimeout(refresh, REFRESH_MS);
      return;
    }
    state.running = true;
    state.again = false;
    const trace = currentTrace();
    const jobs = [
      section("breakers", ["api/breakers", "console/api/history"], renderBreakers),
      section("alerts", [`api/alerts?limit=${LIMITS.alerts}`, `api/deliveries?limit=${LIMITS.deadLetters}`],
              renderAlerts, 1),
      section("functions", ["console/api/functions"], renderFunctions),
      section("logs", [logQuery()], renderLogs),
      section("traces", [`api/traces?limit=${LIMITS.traces}`], renderTraces),
    ];
    if (trace !== null) {
      jobs.push(section("trace", [`api/traces/${trace}`, `api/logs?limit=${LIMITS.traceLogs}`], (answer, logs) => {
        renderWaterfall(answer);
        const mine = (logs || []).filter((l) => String(l.trace_id || "").toLowerCase() === trace);
        replace($("trace-logs"), table(["time", "level", "component", "message", "trace"], logRows(mine),
                                       "No recent log line of this trace."));
      }, 1).catch((err) => {
        if (err instanceof HttpError && err.status === 404) {
          replace($("waterfall"), el("p", { class: "empty" }, err.message));
          return null;
        }
        throw err;
      }));
    }
    const results = await Promise.allSettled(jobs);
    const error = results.filter((r) => r.status === "rejected").map((r) => r.reason)[0];
    if (error) {
      const kind = error instanceof HttpError ? (error.status === 401 ? "auth" : "http")
        : error instanceof NetworkError ? "unreachable" : "bug";
      const message = error instanceof HttpError ? `${error.status}: ${error.message}` : String(error.message || error);
      if (kind === "bug") console.error(error);  // the console's own fault, not the exporter's
      state.failure = { kind, message, since: (state.failure && state.failure.since) || Date.now() };
    } else {
      state.failure = null;
      state.lastOk = Date.now();
    }
    state.running = false;
    tick();
    if (!state.paused) state.timer = setTimeout(refresh, state.again ? 0 : REFRESH_MS);
  }

  function tick() {
    const now = Date.now();
    const age = state.lastOk ? now - state.lastOk : null;
    const stale = state.failure !== null || age === null || age > STALE_MS;
    document.body.classList.toggle("stale", stale && state.lastOk > 0);
    const status = $("status");
    status.dataset.state = state.paused ? "paused" : stale ? "stale" : "live";
    status.textContent = (state.paused ? "paused" : stale ? "stale" : "live") +
      (age === null ? "" : ` - updated ${fmtAgo(age)} ago`);
    const banner = $("banner");
    let text = null;
    if (state.failure) {
      const since = new Date(state.failure.since).toLocaleTimeString();
      const shown = age === null ? "There is no data yet." : `The data shown is from ${fmtAgo(age)} ago.`;
      text = state.failure.kind === "unreachable"
        ? `The exporter is unreachable (since ${since}: ${state.failure.message}). ${shown} Retrying every ${REFRESH_MS / 1000} s.`
        : state.failure.kind === "auth"
          ? `The exporter asks for credentials (${state.failure.message}). Reload the page to sign in.`
          : state.failure.kind === "http"
            ? `The exporter answered ${state.failure.message}. ${shown}`
            : `The console could not show an answer (${state.failure.message}). ${shown}`;
      banner.dataset.kind = state.failure.kind;
    } else if (stale && age !== null && !state.paused) {
      text = `The data is stale: the last complete update was ${fmtAgo(age)} ago.`;
      banner.dataset.kind = "stale";
    }
    banner.hidden = text === null;
    banner.textContent = text || "";
    tickProbes();
  }

  function setPaused(paused) {
    state.paused = paused;
    const button = $("pause");
    button.setAttribute("aria-pressed", String(paused));
    button.textContent = paused ? "resume" : "pause";
    clearTimeout(state.timer);
    if (!paused) refresh();
    tick();
  }

  function start() {
    $("pause").addEventListener("click", () => setPaused(!state.paused));
    const filters = $("log-filters");
    filters.addEventListener("submit", (ev) => ev.preventDefault());
    for (const id of ["log-level", "log-component"]) {
      $(id).addEventListener("change", () => { state.seen.delete("logs"); refresh(); });
    }
    $("log-trace").addEventListener("input", () => renderLogs(state.logs));
    window.addEventListener("hashchange", () => { showView(); refresh(); });
    document.addEventListener("visibilitychange", () => { if (!document.hidden && !state.paused) refresh(); });
    document.addEventListener("keydown", (ev) => {
      const typing = ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement;
      if (ev.key === "Escape" && currentTrace() !== null) window.location.hash = "#/";
      else if (ev.key === "p" && !typing && !ev.ctrlKey && !ev.metaKey && !ev.altKey) setPaused(!state.paused);
    });
    setInterval(tick, 1000);
    showView();
    refresh();
  }

  start();
})();
