/* pbxlink "call me back" form, for a business's own website.
 *
 *   <script src="https://pbx.example.com/static/callback-widget.js" defer></script>
 *   <div data-pbxlink-callback></div>
 *
 * Builds an accessible form in every such div, with DOM APIs only (nothing the visitor or the
 * server says is ever parsed as HTML), and posts it to the pbxlink this script was loaded from.
 * Labels can be changed with data-label-number, data-label-name, data-label-time and
 * data-label-button on the div. No dependencies; class names only, so the site's CSS applies.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script) {  // an old browser: the last script whose address names this file
    var all = document.querySelectorAll('script[src*="callback-widget.js"]');
    script = all[all.length - 1];
  }
  if (!script || !window.fetch) return;
  var endpoint = new URL("/api/v1/callback-requests", script.src).href;
  var count = 0;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text) node.textContent = text;
    return node;
  }

  function field(form, id, label, attrs) {
    var row = el("div", { "class": "pbxlink-callback-field" });
    row.appendChild(el("label", { "for": id }, label));
    attrs.id = id;
    var input = el("input", attrs);
    row.appendChild(input);
    form.appendChild(row);
    return input;
  }

  function when(iso) {
    var at = new Date(iso);
    if (isNaN(at) || at - Date.now() < 120000) return "shortly";
    return "around " + at.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }

  function build(box) {
    if (box.getAttribute("data-pbxlink-ready")) return;
    box.setAttribute("data-pbxlink-ready", "1");
    var id = "pbxlink-callback-" + (++count);
    var text = function (key, fallback) { return box.getAttribute("data-label-" + key) || fallback; };
    var form = el("form", { "class": "pbxlink-callback", "novalidate": "" });
    var number = field(form, id + "-number", text("number", "Your phone number"), {
      type: "tel", name: "number", autocomplete: "tel", required: "", maxlength: "64", inputmode: "tel"
    });
    var name = field(form, id + "-name", text("name", "Your name (optional)"), {
      type: "text", name: "name", autocomplete: "name", maxlength: "128"
    });
    var time = field(form, id + "-time", text("time", "When suits you (optional)"), {
      type: "datetime-local", name: "preferred_time"
    });
    var button = el("button", { type: "submit", "class": "pbxlink-callback-submit" }, text("button", "Call me back"));
    form.appendChild(button);
    var status = el("p", { "class": "pbxlink-callback-status", role: "status", "aria-live": "polite" });
    form.appendChild(status);
    var inputs = { number: number, name: name, preferred_time: time };

    function show(state, message) {
      form.setAttribute("data-state", state);
      status.textContent = message;
    }

    function blame(input) {  // the field the answer is about: marked for screen readers, and focused
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      Object.keys(inputs).forEach(function (key) { inputs[key].removeAttribute("aria-invalid"); });
      if (!number.value.trim()) {
        blame(number);
        show("error", "Please enter your phone number.");
        return;
      }
      var body = { number: number.value };
      if (name.value.trim()) body.name = name.value;
      if (time.value) {
        var at = new Date(time.value);  // the visitor's local time, sent with its offset (as UTC)
        if (isNaN(at)) { blame(time); show("error", "Please enter a valid date and time."); return; }
        body.preferred_time = at.toISOString();
      }
      button.disabled = true;
      form.setAttribute("aria-busy", "true");
      show("sending", "Sending…");
      var who = body.name ? ", " + body.name.trim() : "";
      fetch(endpoint, {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body)
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (response.status === 201) {
            show("sent", "Thank you" + who + "! We will call you back " + when(data.due_at) + ".");
            form.reset();
          } else if (response.ok) {
            show("sent", "Thank you" + who + ": we already have your request and will call you back soon.");
          } else {
            show("error", data.error || "Sorry, that did not work (error " + response.status + "). Please try again later.");
            if (inputs.hasOwnProperty(data.field)) blame(inputs[data.field]);
          }
        });
      }).catch(function () {
        show("error", "Sorry, we could not be reached. Please try again later.");
      }).then(function () {
        button.disabled = false;
        form.removeAttribute("aria-busy");
      });
    });
    box.appendChild(form);
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-pbxlink-callback]"), build);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
