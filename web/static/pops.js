// Screen-pops: one card per ringing call, kept current from the event stream.
// Everything in a pop comes from outside (the caller ID, the CRM), so it is only ever
// set as text (textContent), never as HTML, and only http(s) links are made clickable.
"use strict";

(function () {
  const box = document.getElementById("pops");
  if (!box) return;
  const empty = document.getElementById("pops-empty");
  const status = document.getElementById("live-status");
  const notifyButton = document.getElementById("notify-toggle");
  const autoOpen = document.getElementById("auto-open");
  const linger = Number(box.dataset.linger || "30") * 1000;
  const mine = new Set((box.dataset.me || "").split(",").filter(Boolean));
  const own = box.dataset.own === "1";
  const NOTIFY_KEY = "pbxlink.pops.notify";
  const OPEN_KEY = "pbxlink.pops.autoopen";
  const FINAL = new Set(["stopped", "answered_elsewhere", "missed", "ended"]);
  const MISS = {
    no_answer: "no answer", busy: "busy", abandoned: "abandoned",
    queue_timeout: "queue timeout", not_offered: "not offered", failed: "failed",
  };
  const cards = new Map(); // pop key -> {seq, el, state, timer}
  const opened = new Set(); // pop keys whose CRM record was opened already
  const notified = new Map(); // pop key -> 1: notified of the ring, 2: and of the CRM's name

  // --- options kept in this browser only ------------------------------------------------

  function stored(key) {
    try { return localStorage.getItem(key) === "on"; } catch (e) { return false; }
  }

  function store(key, on) {
    try { localStorage.setItem(key, on ? "on" : "off"); } catch (e) { /* private mode: not kept */ }
  }

  function notifying() {
    return "Notification" in window && Notification.permission === "granted" && stored(NOTIFY_KEY);
  }

  function showNotifyState() {
    if (!("Notification" in window)) {
      notifyButton.textContent = "This browser has no desktop notifications";
      notifyButton.disabled = true;
    } else if (Notification.permission === "denied") {
      notifyButton.textContent = "Desktop notifications are blocked in this browser's site settings";
    } else {
      notifyButton.textContent = notifying() ? "Turn off desktop notifications" : "Turn on desktop notifications";
    }
  }

  notifyButton.addEventListener("click", function () {
    if (!("Notification" in window)) return;
    if (notifying()) {
      store(NOTIFY_KEY, false);
      showNotifyState();
      return;
    }
    Notification.requestPermission().then(function (permission) {
      store(NOTIFY_KEY, permission === "granted");
      showNotifyState();
    });
  });
  autoOpen.checked = stored(OPEN_KEY);
  autoOpen.addEventListener("change", function () { store(OPEN_KEY, autoOpen.checked); });
  showNotifyState();

  // --- drawing a pop ----------------------------------------------------------------------

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function webUrl(raw) {
    if (typeof raw !== "string") return null;
    try {
      const url = new URL(raw);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function clock(iso) {
    const d = new Date(iso);
    return pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function when(iso) {
    const d = new Date(iso);
    const today = new Date();
    if (d.toDateString() === today.toDateString()) return "today " + clock(iso);
    return d.toLocaleDateString(undefined, { month: "short", day: "numeric" }) + " " + clock(iso);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const total = Math.max(0, Math.round(seconds));
    const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  function stateOf(p) {
    const who = own ? "you" : p.agent;
    switch (p.state) {
      case "ringing": return ["ringing", "Ringing"];
      case "answered": return ["answered", "Answered by " + who];
      case "answered_elsewhere":
        if (p.answered_by && mine.has(p.answered_by) && own) return ["elsewhere", "Answered by you on " + p.answered_by];
        return ["elsewhere", p.answered_by ? "Answered by " + p.answered_by : "Answered elsewhere"];
      case "stopped": return ["stopped", "Stopped ringing"];
      case "missed": return ["missed", "Missed"];
      default: return ["ended", "Ended"];
    }
  }

  function fact(list, label, value) {
    if (value === null || value === undefined || value === "") return;
    list.append(el("dt", null, label), el("dd", null, value));
  }

  function lookupLine(p) {
    switch (p.lookup) {
      case "pending": return el("p", "pop-lookup pending", "Looking up the caller in the CRM…");
      case "none": return el("p", "pop-lookup", "Not found in the CRM");
      case "error": return el("p", "pop-lookup bad", "CRM unavailable");
      default: return null;
    }
  }

  function recentTable(recent) {
    if (recent === null || recent === undefined) return el("p", "pop-recent-note", "Loading earlier calls…");
    if (!recent.length) return el("p", "pop-recent-note", "No earlier calls with this number");
    const table = el("table", "pop-recent");
    table.append(el("caption", null, "Last calls with this number"));
    const head = table.createTHead().insertRow();
    for (const name of ["Time", "Direction", "Agent", "Result", "Talk"]) head.append(el("th", null, name));
    const body = table.createTBody();
    for (const c of recent) {
      const row = body.insertRow();
      const result = c.disposition === "missed"
        ? "missed" + (MISS[c.miss_reason] ? " · " + MISS[c.miss_reason] : "")
        : c.disposition || "";
      row.append(
        el("td", null, c.started_at ? when(c.started_at) : ""), el("td", null, c.direction || ""),
        el("td", null, c.agent || "—"), el("td", "result " + (c.disposition || ""), result),
        el("td", "num", c.disposition === "answered" ? duration(c.talk_seconds) : "—"),
      );
    }
    return table;
  }

  function render(p) {
    const [stKey, stLabel] = stateOf(p);
    const contact = p.contact;
    const card = el("article", "pop st-" + stKey);
    card.dataset.key = p.key;
    card.dataset.state = p.state;

    const head = el("header", "pop-head");
    head.append(el("span", "pop-number", p.call.number || "unknown number"), el("span", "badge st-" + stKey, stLabel));
    if (mine.size > 1) head.append(el("span", "pop-ext", "on " + p.agent));
    card.append(head);

    const listed = p.campaign;  // an agent-first campaign call: whom pbxlink is about to dial
    const fallback = (listed && listed.name) || p.call.caller_name || "Unknown caller";
    card.append(el("h2", "pop-name", contact ? contact.name : fallback));
    if (p.call.caller_name && (!contact || contact.name !== p.call.caller_name)) {
      card.append(el("p", "pop-callerid", "Caller ID name: " + p.call.caller_name));
    }
    const facts = el("dl", "pop-facts");
    if (contact) {
      fact(facts, "Company", contact.company);
      fact(facts, "Owner", contact.owner);
    }
    if (listed) {
      fact(facts, "Campaign", listed.campaign);
      for (const [key, value] of Object.entries(listed.fields || {})) fact(facts, key, value);
    }
    fact(facts, "Queue", p.call.queue);
    fact(facts, "Call", p.call.direction + (p.call.started_at ? " since " + clock(p.call.started_at) : ""));
    card.append(facts);

    const line = lookupLine(p);
    if (line) card.append(line);
    if (p.errors && p.errors.length) {
      const errors = el("ul", "pop-errors");
      for (const text of p.errors) errors.append(el("li", null, text));
      card.append(errors);
    }
    if (contact) {
      if (contact.deals && contact.deals.length) {
        const deals = el("ul", "pop-deals");
        deals.setAttribute("aria-label", "Open deals");
        for (const d of contact.deals) {
          const item = el("li");
          const url = webUrl(d.url);
          const title = url ? el("a", null, d.title) : el("span", null, d.title);
          if (url) Object.assign(title, { href: url, target: "_blank", rel: "noopener noreferrer" });
          item.append(title);
          const extra = [d.amount, d.stage].filter(Boolean).join(" · ");
          if (extra) item.append(el("span", "sub", " " + extra));
          deals.append(item);
        }
        card.append(el("p", "pop-label", "Open deals"), deals);
      }
      const url = webUrl(contact.url);
      if (url) {
        const link = el("a", "pop-open", "Open in " + contact.crm);
        Object.assign(link, { href: url, target: "_blank", rel: "noopener noreferrer" });
        card.append(link);
      }
      if (p.more > 0) card.append(el("p", "sub", "and " + p.more + " more with this number in " + contact.crm));
    }
    card.append(recentTable(p.recent));
    return card;
  }

  // --- keeping the cards ------------------------------------------------------------------

  function remove(key) {
    const held = cards.get(key);
    if (!held) return;
    clearTimeout(held.timer);
    held.el.remove();
    cards.delete(key);
    notified.delete(key);
    empty.hidden = cards.size > 0;
  }

  function apply(p) {
    const held = cards.get(p.key);
    if (held && held.seq >= p.seq) return; // an older view than the one shown
    const card = render(p);
    if (held) {
      held.el.replaceWith(card);
      clearTimeout(held.timer);
    } else {
      box.prepend(card);
    }
    const entry = { seq: p.seq, el: card, state: p.state, timer: null };
    if (FINAL.has(p.state)) entry.timer = setTimeout(function () { remove(p.key); }, linger);
    cards.set(p.key, entry);
    empty.hidden = true;
    if (p.state === "ringing") alertAgent(p);
  }

  function alertAgent(p) {
    const contact = p.contact;
    const url = contact && webUrl(contact.url);
    if (url && autoOpen.checked && !opened.has(p.key)) {
      opened.add(p.key);
      window.open(url, "_blank", "noopener");
    }
    // One notification per ring, replaced once (silently) when the CRM names the caller.
    const level = contact ? 2 : 1;
    if (!notifying() || (notified.get(p.key) || 0) >= level) return;
    const again = notified.has(p.key);
    notified.set(p.key, level);
    const body = [contact ? contact.name : p.call.caller_name, contact && contact.company,
      p.call.queue && "queue " + p.call.queue].filter(Boolean);
    const note = new Notification("Call from " + (p.call.number || "unknown number"), {
      body: body.join(" · "), tag: p.key, silent: again,
    });
    note.onclick = function () { window.focus(); note.close(); };
  }

  // --- the stream -------------------------------------------------------------------------

  function setStatus(cls, text) {
    status.className = "live " + cls;
    status.textContent = text;
  }

  function connect() {
    const source = new EventSource(box.dataset.stream);
    source.addEventListener("snapshot", function (msg) {
      const data = JSON.parse(msg.data);
      const keep = new Set(data.pops.map(function (p) { return p.key; }));
      for (const key of Array.from(cards.keys())) if (!keep.has(key)) remove(key);
      for (const p of data.pops) apply(p);
      setStatus("on", "Live");
    });
    source.addEventListener("pop", function (msg) { apply(JSON.parse(msg.data)); });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (logged out, server restarting): the browser gives up, so we retry ourselves.
        setStatus("off", "Disconnected, retrying…");
        setTimeout(connect, 5000);
      } else {
        setStatus("connecting", "Reconnecting…");
      }
    };
  }

  if (box.dataset.stream) connect();
})();

// Callbacks waiting for this agent: a count next to the heading, kept current every 30 s
// and whenever the tab comes back into view. Hidden while there are none, or when logged out;
// a failed request (the server restarting) leaves the last count as it was.
(function () {
  const badge = document.getElementById("callbacks-waiting");
  if (!badge) return;
  const url = new URL("callbacks/waiting", document.baseURI); // beside /pops, wherever the panel is mounted
  const list = new URL("callbacks?status=pending", document.baseURI);
  const EVERY = 30000;

  function show(n) {
    badge.hidden = !(n > 0);
    if (badge.hidden) return;
    const link = document.createElement("a");
    link.href = list.href;
    link.textContent = n === 1 ? "1 callback waiting" : n + " callbacks waiting";
    badge.replaceChildren(link);
  }

  function refresh() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (resp) {
        if (resp.status === 401) return { waiting: 0 }; // logged out
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.json();
      })
      .then(function (data) { show(Number(data.waiting) || 0); })
      .catch(function () { /* unreachable for now: keep the last count */ });
  }

  refresh();
  setInterval(refresh, EVERY);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
