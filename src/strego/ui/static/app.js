/* strego UI: small progressive enhancements. Every page works without this file.
 * - live refresh pause/resume (htmx polls [data-live]; we veto requests while paused,
 *   while the tab is hidden, or while the user is selecting rows)
 * - confirmation for destructive forms/buttons (data-confirm)
 * - select-all and selection count for bulk actions
 * - local-time tooltips, copy buttons
 * - a faded edge on tables wider than their card (data-more), so the scroll is seen
 * No inline scripts: the Content-Security-Policy forbids them.
 */
(function () {
  "use strict";
  var KEY = "strego.live";
  var live = true;
  try { live = window.localStorage.getItem(KEY) !== "off"; } catch (e) { /* storage blocked */ }

  var offline = false;

  function paintToggle() {
    var button = document.getElementById("live-toggle");
    if (!button) return;
    button.setAttribute("aria-pressed", live ? "true" : "false");
    button.classList.toggle("paused", !live);
    button.classList.toggle("offline", live && offline);
    var label = button.querySelector(".live-label");
    if (label) label.textContent = !live ? "Paused" : offline ? "Offline" : "Live";
    button.title = offline ? "The last refresh failed (Redis or the UI server is unreachable)"
      : "Pause or resume live refresh";
  }

  // A failed refresh keeps the last data on screen and says so; the next success clears it.
  function refreshed(ok) {
    return function (event) {
      var region = event.detail && event.detail.elt;
      if (!region || !region.hasAttribute || !region.hasAttribute("data-live")) return;
      if (offline !== !ok) { offline = !ok; paintToggle(); }
    };
  }
  document.addEventListener("htmx:responseError", refreshed(false));
  document.addEventListener("htmx:sendError", refreshed(false));
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.successful) refreshed(true)(event);
  });

  function busy(region) {
    if (region.querySelector("input[type=checkbox]:checked")) return true;
    var active = document.activeElement;
    return !!(active && region.contains(active) && active.matches("input, select, textarea"));
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var region = event.detail && event.detail.elt;
    if (!region || !region.hasAttribute || !region.hasAttribute("data-live")) return;
    if (!live || document.hidden || busy(region)) event.preventDefault();
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    enhance(event.detail && event.detail.target ? event.detail.target : document);
  });

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest && event.target.closest("#live-toggle");
    if (toggle) {
      live = !live;
      try { window.localStorage.setItem(KEY, live ? "on" : "off"); } catch (e) { /* ignore */ }
      paintToggle();
      return;
    }
    var copy = event.target.closest && event.target.closest("[data-copy]");
    if (copy && navigator.clipboard) {
      navigator.clipboard.writeText(copy.getAttribute("data-copy")).then(function () {
        var old = copy.textContent;
        copy.textContent = "copied";
        setTimeout(function () { copy.textContent = old; }, 1200);
      });
    }
  });

  // Destructive actions ask first; the message is in data-confirm (button or form).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    var message = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  }, true);

  // Search forms (GET) leave empty filters out of the URL, so links stay short.
  document.addEventListener("formdata", function (event) {
    if ((event.target.getAttribute("method") || "get").toLowerCase() !== "get") return;
    Array.from(event.formData.entries()).forEach(function (entry) {
      if (entry[1] === "") event.formData.delete(entry[0]);
    });
  });

  function updateSelection(form) {
    if (!form) return;
    var boxes = form.querySelectorAll("input[name=ids]");
    var checked = form.querySelectorAll("input[name=ids]:checked").length;
    var counter = form.querySelector("[data-selected-count]");
    if (counter) counter.textContent = checked + " selected";
    form.querySelectorAll("[data-bulk]").forEach(function (b) { b.disabled = checked === 0; });
    var all = form.querySelector("[data-select-all]");
    if (all) {
      all.checked = checked > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-select-all]")) {
      target.form.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = target.checked; });
    }
    if (target.form && target.form.classList.contains("bulk")) updateSelection(target.form);
  });

  // A scroller shows which of its edges hides content: "right", "left" or "both".
  function markOverflow(wrap) {
    var hidden = wrap.scrollWidth - wrap.clientWidth;
    var left = wrap.scrollLeft > 1;
    var right = hidden - wrap.scrollLeft > 1;
    var more = left && right ? "both" : right ? "right" : left ? "left" : null;
    if (more) wrap.setAttribute("data-more", more); else wrap.removeAttribute("data-more");
  }

  function markAll() { document.querySelectorAll(".table-wrap").forEach(markOverflow); }

  document.addEventListener("scroll", function (event) {
    var target = event.target;
    if (target && target.classList && target.classList.contains("table-wrap")) markOverflow(target);
  }, true);
  window.addEventListener("resize", markAll);

  function enhance(root) {
    root.querySelectorAll(".table-wrap").forEach(markOverflow);
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (!isNaN(date)) el.title = date.toLocaleString() + " (local) · " + el.getAttribute("datetime");
      // The Periodic page shows the viewer's own time, not just on hover.
      if (!isNaN(date) && el.hasAttribute("data-local")) el.textContent = date.toLocaleString() + " (your time)";
    });
    root.querySelectorAll("form.bulk").forEach(updateSelection);
  }

  document.addEventListener("DOMContentLoaded", function () {
    paintToggle();
    enhance(document);
    document.addEventListener("visibilitychange", paintToggle);
  });
})();
