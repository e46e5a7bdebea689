// The live calls table: rows are upserted by pbx + call_id from the event stream,
// and the table catches up from the JSON API each time the stream (re)opens.
"use strict";

(function () {
  const table = document.getElementById("calls");
  if (!table) return;
  const body = table.tBodies[0];
  const empty = document.getElementById("empty");
  const status = document.getElementById("live-status");
  const MISS = {
    no_answer: "no answer", busy: "busy", abandoned: "abandoned",
    queue_timeout: "queue timeout", not_offered: "not offered", failed: "failed",
  };
  const rows = new Map();
  for (const tr of body.rows) rows.set(keyOf(tr.dataset.pbx, tr.dataset.callId), tr);

  function keyOf(pbx, callId) { return pbx + "\n" + callId; }

  function progress(c) { return c.ended_at ? 2 : c.answered_at ? 1 : 0; }

  function rowProgress(tr) { return tr.dataset.ended ? 2 : tr.dataset.answered ? 1 : 0; }

  function statusOf(c) {
    if (!c.ended_at) return c.answered_at ? ["talking", "talking"] : ["ringing", "ringing"];
    let st;
    if (c.disposition === "answered") st = ["answered", "answered"];
    else {
      const reason = MISS[c.miss_reason];
      st = ["missed", reason ? "missed · " + reason : "missed"];
    }
    if (c.end_seen === false) st[1] += " (end not seen)";
    return st;
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function clock(iso) {
    const d = new Date(iso);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const total = Math.max(0, Math.round(seconds));
    const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  function cell(label, text, cls) {
    const td = document.createElement("td");
    td.dataset.label = label;
    if (cls) td.className = cls;
    if (text !== null) td.textContent = text;
    return td;
  }

  function render(c, id) {
    const tr = document.createElement("tr");
    const [stKey, stLabel] = statusOf(c);
    Object.assign(tr.dataset, {
      pbx: c.pbx, callId: c.call_id, id: id || "", started: c.started_at,
      answered: c.answered_at || "", ended: c.ended_at || "",
    });
    tr.className = "st-" + stKey;

    const time = document.createElement("time");
    time.dateTime = c.started_at;
    time.textContent = clock(c.started_at);
    tr.append(cell("Time", null), cell("Direction", c.direction));
    if (id) {  // the call's page
      const link = document.createElement("a");
      link.href = "/calls/" + encodeURIComponent(id);
      link.append(time);
      tr.cells[0].append(link);
    } else {
      tr.cells[0].append(time);
    }

    const caller = cell("Caller", c.caller || "—");
    if (c.caller_name) {
      const sub = document.createElement("span");
      sub.className = "sub";
      sub.textContent = c.caller_name;
      caller.append(" ", sub);
    }
    const badge = document.createElement("span");
    badge.className = "badge st-" + stKey;
    badge.textContent = stLabel;
    const st = cell("Status", null);
    st.append(badge);
    const rec = cell("Rec", null);
    if (c.recording) {
      const mark = document.createElement("a");
      mark.className = "rec";
      mark.title = "recorded: listen";
      mark.href = "/recordings?call=" + encodeURIComponent(c.pbx + ":" + c.call_id);
      mark.textContent = "● rec";
      rec.append(mark);
    }
    tr.append(
      caller, cell("Callee", c.callee || "—"), cell("Agent", c.agent || "—"), cell("Queue", c.queue || "—"),
      st, cell("Wait", duration(c.wait_seconds), "num"), cell("Talk", duration(c.talk_seconds), "num"), rec,
    );
    return tr;
  }

  function upsert(c, id) {
    const key = keyOf(c.pbx, c.call_id);
    const old = rows.get(key);
    if (old && progress(c) < rowProgress(old)) return; // an older view of a call we already show further on
    const tr = render(c, id || (old && old.dataset.id));
    if (old) {
      old.replaceWith(tr);
    } else {
      let before = null;
      for (const other of body.rows) {
        if (other.dataset.started < c.started_at) { before = other; break; }
      }
      body.insertBefore(tr, before);
    }
    rows.set(key, tr);
    empty.hidden = true;
  }

  function tick() {
    const now = Date.now();
    for (const tr of rows.values()) {
      if (tr.dataset.ended) continue;
      // Until the final record says otherwise: ringing counts wait, talking counts talk.
      if (tr.dataset.answered) tr.cells[8].textContent = duration((now - Date.parse(tr.dataset.answered)) / 1000);
      else tr.cells[7].textContent = duration((now - Date.parse(tr.dataset.started)) / 1000);
    }
  }

  async function catchUp() {
    let url = table.dataset.api + "?per_page=200&since=" + encodeURIComponent(table.dataset.since);
    for (let pages = 0; url && pages < 10; pages++) {
      const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!resp.ok) return;
      const data = await resp.json();
      for (const c of data.calls) upsert(c, c.id);
      url = data.next;
    }
  }

  function setStatus(cls, text) {
    status.className = "live " + cls;
    status.textContent = text;
  }

  function connect() {
    const source = new EventSource(table.dataset.stream);
    source.onopen = function () {
      setStatus("on", "Live");
      catchUp().catch(function () { /* the next reopen tries again */ });
    };
    source.onmessage = function (msg) {
      const ev = JSON.parse(msg.data);
      upsert(ev.call, ev.id);
    };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (e.g. logged out, server restarting): the browser gives up, so we retry ourselves.
        setStatus("off", "Disconnected, retrying…");
        setTimeout(connect, 5000);
      } else {
        setStatus("connecting", "Reconnecting…");
      }
    };
  }

  setInterval(tick, 1000);
  if (table.dataset.stream) connect();
})();
