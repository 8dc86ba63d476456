// Live updates of the console's run, checkpoint and inbox pages, from the server-sent events of
// GET /events (see bot/web/README.md). A page opts in with attributes on <main id="main">:
//   data-live-run="RUN"          the run whose events matter (absent with data-live-all: the inbox)
//   data-live-checkpoint="CP"    on a checkpoint page: only its own changes (and the run's end)
//   data-live-after="SEQ"        the last event already reflected in the page
//   data-live-page="/path"       the page to fetch again when something changed
// The page is fetched again and its <main> replaced, so a decision form that went stale shows
// the new state. This file is served from /static/: the console allows no inline script.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var run = main.getAttribute("data-live-run");
  var all = main.hasAttribute("data-live-all");
  if (!run && !all) {
    return;
  }
  var checkpoint = main.getAttribute("data-live-checkpoint");
  var page = main.getAttribute("data-live-page") || window.location.pathname;
  var query = [];
  if (run) {
    query.push("run=" + encodeURIComponent(run));
  }
  var after = main.getAttribute("data-live-after");
  if (after) {
    query.push("after=" + encodeURIComponent(after));
  }
  var source = new EventSource("/events" + (query.length ? "?" + query.join("&") : ""));
  var busy = false;
  var again = false;

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(page, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        if (!fresh) {
          return;
        }
        main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes));
        var graph = document.getElementById("graph");
        if (graph) {
          graph.src = graph.src.split("?")[0] + "?t=" + Date.now();
        }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  function matters(type, data) {
    if (all) {
      return type.indexOf("checkpoint.") === 0 || type === "run.finished";
    }
    if (checkpoint) {
      return data.checkpoint_id === checkpoint || type === "run.finished";
    }
    return true;
  }

  [
    "run.started",
    "node.started",
    "node.succeeded",
    "node.failed",
    "checkpoint.opened",
    "checkpoint.updated",
    "checkpoint.decided",
    "run.finished",
  ].forEach(function (type) {
    source.addEventListener(type, function (event) {
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (matters(type, data)) {
        refresh();
      }
    });
  });
})();
