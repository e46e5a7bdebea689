// The dashboard: draws each snapshot the server pushes (SSE) — queues against their targets,
// calls in progress, agents, and two uPlot charts. Data is only ever set as text.
"use strict";

(function () {
  const root = document.getElementById("dashboard");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const status = $("live-status");
  const REASONS = {
    no_answer: "no answer", busy: "busy", abandoned: "abandoned",
    queue_timeout: "queue timeout", not_offered: "not offered", failed: "failed",
  };
  let timers = [];
  let charts = {};

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function pct(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }

  function secs(v) {
    if (v === null || v === undefined) return "—";
    const t = Math.round(v);
    return t >= 60 ? Math.floor(t / 60) + " min " + String(t % 60).padStart(2, "0") + " s" : t + " s";
  }

  function clock(seconds) {
    const t = Math.max(0, Math.floor(seconds));
    const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = t % 60;
    const mm = String(m).padStart(2, "0"), ss = String(s).padStart(2, "0");
    return h ? h + ":" + mm + ":" + ss : m + ":" + ss;
  }

  function td(label, child) {
    const cell = el("td");
    cell.dataset.label = label;
    if (child instanceof Node) cell.append(child); else cell.textContent = String(child);
    return cell;
  }

  function judged(value, met, target) {
    const span = el("span", "kpi", value);
    if (met !== null && met !== undefined) {
      const mark = el("span", "mark " + (met ? "met" : "missed"), met ? "met" : "missed");
      mark.title = "target " + target;
      span.append(mark);
    }
    return span;
  }

  function missed(k) {
    const parts = Object.entries(k.missed_by_reason).filter(([, n]) => n > 0)
      .map(([r, n]) => n + " " + (REASONS[r] || r));
    return String(k.missed) + (parts.length ? " (" + parts.join(", ") + ")" : "");
  }

  function queueRow(name, k, t, cls) {
    const tr = el("tr", cls);
    tr.dataset.queue = name;
    const abandon = pct(k.abandon_rate) + (k.short_abandons ? " · " + k.short_abandons + " short" : "");
    tr.append(
      td("Queue", name), td("Offered", k.offered), td("Answered", k.answered), td("Missed", missed(k)),
      td("Abandon rate", judged(abandon, k.abandon_rate_met, "under " + t.abandon_rate + "%")),
      td("Service level", judged(pct(k.service_level), k.service_level_met,
        t.service_level + "% in " + t.service_seconds + " s")),
      td("ASA", secs(k.asa)), td("AHT", secs(k.aht)), td("Transfers", pct(k.transfer_rate)),
      td("Callbacks pending", k.callbacks_pending),
    );
    return tr;
  }

  function drawQueues(s) {
    const t = s.targets;
    $("db-targets").textContent = "Targets: service level " + t.service_level + "% within " +
      t.service_seconds + " s; abandon rate under " + t.abandon_rate + "% (abandons under " +
      t.min_wait + " s are misdials, left out of both).";
    const body = $("db-queue-table").tBodies[0];
    body.replaceChildren(...s.queues.map((q) => queueRow(q.queue, q, t)));
    $("db-queue-table").tFoot.replaceChildren(queueRow("All queues", s.total, t, "total"));
    $("db-no-calls").hidden = s.queues.length > 0;
  }

  function since(iso) { return (Date.now() - Date.parse(iso)) / 1000; }

  function timer(iso) {
    const span = el("span", "timer", clock(since(iso)));
    timers.push([span, iso]);
    return span;
  }

  function drawProgress(s) {
    const list = $("db-progress");
    list.replaceChildren(...s.in_progress.map((c) => {
      const li = el("li");
      li.dataset.callId = c.call_id;
      const who = c.direction === "inbound" ? (c.caller || "unknown caller") : (c.callee || c.caller || "");
      const what = [c.direction, c.queue ? "queue " + c.queue : null,
        c.agents.length ? (c.state === "ringing" ? "ringing " : "with ") + c.agents.join(", ") : null,
        c.caller_name].filter(Boolean).join(" · ");
      li.append(el("span", "state " + c.state, c.state), el("span", "who", who), el("span", "what", what),
        timer(c.answered_at || c.started_at));
      return li;
    }));
    $("db-progress-count").textContent = String(s.in_progress.length);
    $("db-no-progress").hidden = s.in_progress.length > 0;
  }

  function drawAgents(s) {
    $("db-agents").replaceChildren(...s.agents.map((a) => {
      const li = el("li");
      li.dataset.user = a.username;
      const what = [a.extensions.join(", "), a.call ? (a.call.caller || "") + (a.call.queue ? " · " + a.call.queue : "") : null]
        .filter(Boolean).join(" · ");
      li.append(el("span", "state " + a.state, a.state), el("span", "who", a.username), el("span", "what", what));
      if (a.since) li.append(timer(a.since));
      return li;
    }));
    $("db-no-agents").hidden = s.agents.length > 0;
  }

  function chart(id, series, zone, daily) {
    const box = $(id);
    const data = [series.t, series.offered, series.answered, series.abandoned];
    if (charts[id]) { charts[id].setData(data); return; }
    if (typeof uPlot === "undefined") return;
    const bars = uPlot.paths.bars({ size: [0.7, 40] });
    const step = daily ? 86400 : 3600;  // half a bucket of room each side, so the end bars show whole
    const opts = {
      width: Math.max(280, box.clientWidth), height: 240,
      legend: { live: false },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), zone),
      scales: { x: { time: true, range: (u, lo, hi) => [lo - step / 2, hi + step / 2] } },
      axes: [{ values: daily ? "{D}/{M}" : "{HH}:{mm}" }, {}],
      series: [
        { label: daily ? "Day" : "Hour", value: daily ? "{YYYY}-{MM}-{DD}" : "{HH}:{mm}" },
        { label: "Offered", stroke: "#2456c8", fill: "rgba(36,86,200,0.18)", paths: bars, points: { show: false } },
        { label: "Answered", stroke: "#1a7f45", width: 2, points: { show: true } },
        { label: "Abandoned", stroke: "#b42318", width: 2, dash: [6, 4], points: { show: true } },
      ],
    };
    charts[id] = new uPlot(opts, data, box);
  }

  function draw(s) {
    timers = [];
    $("db-day").textContent = "Today, " + s.day + " (" + s.timezone + ")";
    drawQueues(s);
    drawProgress(s);
    drawAgents(s);
    chart("db-chart-hour", s.by_hour, s.timezone, false);
    chart("db-chart-day", s.by_day, s.timezone, true);
    root.dataset.updated = s.at;
  }

  setInterval(() => { for (const [span, iso] of timers) span.textContent = clock(since(iso)); }, 1000);
  window.addEventListener("resize", () => {
    for (const [id, c] of Object.entries(charts)) c.setSize({ width: Math.max(280, $(id).clientWidth), height: 240 });
  });

  fetch(root.dataset.snapshot, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null)).then((s) => { if (s) draw(s); });
  if (root.dataset.stream) {
    const source = new EventSource(root.dataset.stream);
    source.onopen = () => { status.textContent = "Live"; };
    source.onerror = () => { status.textContent = "Reconnecting…"; };
    source.onmessage = (e) => draw(JSON.parse(e.data));
  }
})();
