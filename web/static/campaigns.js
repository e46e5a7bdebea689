// Campaigns: the live report of each campaign on the page (every 2 s), the progress of running
// imports (every second until they end), and the campaign form's fields for the chosen mode.
// Every value comes from the JSON API and is set as text, never as HTML.
"use strict";

(function () {
  const REPORT_EVERY = 2000;
  const IMPORT_EVERY = 1000;

  function pad(n) { return String(n).padStart(2, "0"); }

  // As the server's filters do (web/campaigns.py: done_percent, rate, eta).
  const FORMAT = {
    answer_rate: function (v) { return v === null ? "—" : (v * 100).toFixed(1) + "%"; },
    eta_seconds: function (v) {
      if (v === null) return "—";
      const minutes = Math.ceil(v / 60);
      if (minutes <= 1) return "under a minute";
      return minutes >= 60 ? Math.floor(minutes / 60) + " h " + pad(minutes % 60) + " min" : minutes + " min";
    },
  };

  function donePercent(p) {
    return p.contacts ? Math.floor((100 * (p.contacts - p.remaining)) / p.contacts) : 0;
  }

  async function fetchJson(url) {
    const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!resp.ok) throw new Error(url + ": " + resp.status);
    return resp.json();
  }

  function fill(box, values) {
    for (const el of box.querySelectorAll("[data-field]")) {
      const key = el.dataset.field;
      if (!(key in values)) continue;
      const value = values[key];
      el.textContent = FORMAT[key] ? FORMAT[key](value) : String(value === null ? "" : value);
    }
  }

  function setBar(box, percent) {
    const bar = box.querySelector("progress");
    if (bar) bar.value = percent;
    const text = box.querySelector("[data-field=percent]");
    if (text) text.textContent = percent + "%";
  }

  function setStatus(el, status) {
    if (!el || el.textContent === status) return;
    el.textContent = status;
    el.className = el.className.replace(/\bst-\S+/g, "") + " st-" + status;
  }

  // --- campaign reports: one request for the list page, one for a campaign's page -----------

  function reporter(box) {
    const card = box.closest(".cp-card");
    const status = card ? card.querySelector(".cp-status") : document.getElementById("cp-status");
    const shown = status ? status.textContent : "";
    const changed = document.getElementById("cp-changed");
    return function (c) {
      fill(box, c.progress);
      setBar(box, donePercent(c.progress));
      setStatus(status, c.status);
      if (changed && c.status !== shown) { // the commands shown are those of the old status
        changed.querySelector("strong").textContent = c.status;
        changed.hidden = false;
      }
    };
  }

  function poll(url, show) {
    async function refresh() {
      try {
        show(await fetchJson(url));
      } catch (e) { /* the next round tries again */ }
      setTimeout(refresh, REPORT_EVERY);
    }
    setTimeout(refresh, REPORT_EVERY);
  }

  // --- imports -------------------------------------------------------------------------

  function watchImport(item) {
    async function refresh() {
      let d;
      try {
        d = await fetchJson(item.dataset.importUrl);
      } catch (e) {
        setTimeout(refresh, IMPORT_EVERY);
        return;
      }
      const { rejects_url: rejects, error, status, ...counts } = d;
      fill(item, counts);
      setBar(item, Math.round(d.fraction * 100));
      setStatus(item.querySelector("[data-field=status]"), status);
      item.dataset.status = d.status;
      const link = item.querySelector("[data-field=rejects_url]");
      if (link && rejects) { link.href = rejects; link.hidden = false; }
      const problem = item.querySelector("[data-field=error]");
      if (problem && error) { problem.textContent = error; problem.hidden = false; }
      if (d.status === "running") setTimeout(refresh, IMPORT_EVERY);
    }
    refresh();
  }

  // --- the form: the fields of the chosen mode -------------------------------------------

  function modeFields(form) {
    const radios = form.querySelectorAll("input[name=mode]");
    function show() {
      const chosen = form.querySelector("input[name=mode]:checked");
      for (const el of form.querySelectorAll("[data-mode]")) {
        el.hidden = chosen !== null && el.dataset.mode !== chosen.value;
      }
    }
    for (const radio of radios) radio.addEventListener("change", show);
    show();
  }

  const list = document.querySelector("[data-campaigns-url]");
  if (list) {
    const shows = new Map();
    for (const box of list.querySelectorAll("[data-campaign]")) shows.set(box.dataset.campaign, reporter(box));
    poll(list.dataset.campaignsUrl, function (data) {
      for (const c of data.campaigns) {
        const show = shows.get(String(c.id));
        if (show) show(c);
      }
    });
  } else {
    for (const box of document.querySelectorAll("[data-progress-url]")) poll(box.dataset.progressUrl, reporter(box));
  }
  for (const item of document.querySelectorAll("[data-import-url][data-status=running]")) watchImport(item);
  const form = document.querySelector("form.cp-form");
  if (form) modeFields(form);
})();
