// Live updates: the server-sent event stream says which app changed; the page then fetches itself
// and swaps its live parts (elements with class "live-part") in place. When the stream cannot be
// held open the page is refreshed every REFRESH_MS instead. Without JavaScript nothing here runs
// and the pages are plain documents: reload to see changes.
(function () {
  "use strict";
  var REFRESH_MS = 10000;
  // Time to interactive (bench/dashboard_bench.py reads this mark): htmx signals "htmx:load" on the
  // body once it has wired up the page's boosted links, forms and lazy loads.
  document.addEventListener("htmx:load", function mark(event) {
    if (event.target !== document.body) { return; }
    performance.mark("tether:interactive");
    document.removeEventListener("htmx:load", mark);
  });
  var root = document.querySelector("[data-live]");
  if (!root) { return; }
  var state = document.getElementById("live-state");
  var timer = null, poll = null, source = null;

  function say(text) {
    if (!state) { return; }
    state.hidden = !text;
    state.textContent = text;
  }

  // A live part is replaced as a whole: keep the keyboard focus on the same control in the new
  // part (by id, else by its position among the part's focusable elements) so a refresh never
  // throws a keyboard user back to the top of the page.
  var FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";

  function focusedIn(part) {
    var active = document.activeElement;
    if (!active || active === document.body || !part.contains(active)) { return null; }
    if (active.id) { return { id: active.id }; }
    return { index: Array.prototype.indexOf.call(part.querySelectorAll(FOCUSABLE), active) };
  }

  function refocus(next, where) {
    if (!where) { return; }
    var target = where.id ? document.getElementById(where.id) : next.querySelectorAll(FOCUSABLE)[where.index];
    if (target) { target.focus({ preventScroll: true }); }
  }

  function refresh() {
    if (document.activeElement && document.activeElement.closest(".live-part form")) { return; }
    fetch(location.pathname + location.search, { headers: { "X-Live-Refresh": "1" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll(".live-part[id]").forEach(function (part) {
          var next = fresh.getElementById(part.id);
          if (next) {
            var where = focusedIn(part);
            part.replaceWith(next);
            if (window.htmx) { window.htmx.process(next); }
            refocus(next, where);
          }
        });
        document.dispatchEvent(new CustomEvent("tether:refreshed"));
      })
      .catch(function () { /* the next event or poll tries again */ });
  }

  function soon() {
    if (timer) { return; }
    timer = setTimeout(function () { timer = null; refresh(); }, 250);  // one fetch for a burst of changes
  }

  function startPolling(reason) {
    if (poll) { return; }
    poll = setInterval(refresh, REFRESH_MS);
    say(reason + " Refreshing every " + REFRESH_MS / 1000 + " s.");
  }

  function stopPolling() {
    if (poll) { clearInterval(poll); poll = null; }
    say("");
  }

  if (!window.EventSource) {
    startPolling("Live updates are not supported by this browser.");
    return;
  }
  source = new EventSource(root.getAttribute("data-live"));
  source.addEventListener("open", function () { stopPolling(); document.documentElement.dataset.live = "open"; });
  source.addEventListener("changed", soon);
  source.addEventListener("error", function () {
    document.documentElement.dataset.live = "degraded";
    startPolling("Live updates are interrupted.");
  });
})();
