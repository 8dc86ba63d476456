/* Signoff console charts: every element with class "chart" and a data-src draws the JSON series
   of GET /stats/charts/{chart} with uPlot (served from /static, no inline script: the console's
   Content-Security-Policy allows scripts from this origin only). data-stat keeps one measure
   (for example cost_usd or tokens) of a chart that has several. */
(function () {
  "use strict";
  var palette = ["#2456d6", "#137a3f", "#b42318", "#a15c00", "#6941c6", "#0e7490", "#c11574", "#475467"];

  // The console's one duration format (bot/web/_filters.py duration): 850 ms, 4.2 s, 3m 20s, 2h 5m, 1d 3h.
  function duration(seconds) {
    var s = Math.abs(seconds);
    if (s < 1) { return Math.round(s * 1000) + " ms"; }
    if (s < 60) { return (Math.round(s * 10) / 10).toFixed(1) + " s"; }
    var whole = Math.floor(s);
    var d = Math.floor(whole / 86400), h = Math.floor((whole % 86400) / 3600);
    var m = Math.floor((whole % 3600) / 60), sec = whole % 60;
    if (d) { return d + "d " + h + "h"; }
    if (h) { return h + "h " + m + "m"; }
    return m + "m " + sec + "s";
  }

  function format(unit, stat, value) {
    if (value === null || value === undefined) { return "—"; }
    if (unit === "seconds") { return duration(value); }
    if (unit === "share") { return Math.round(value * 100) + "%"; }
    if (stat === "tokens") { return String(Math.round(value)); }
    if (unit === "usd") { return "$" + value.toFixed(value < 1 ? 4 : 2); }
    return String(value);
  }

  function message(el, text) {
    el.textContent = text;
    el.classList.add("muted");
  }

  function draw(el, chart) {
    var wanted = el.getAttribute("data-stat");
    var series = chart.series.filter(function (s) { return !wanted || s.stat === wanted; });
    if (!series.length) { message(el, "No data in this period."); return; }
    var stat = wanted || series[0].stat;
    var data = [chart.x];
    var lines = [{}];
    series.forEach(function (s, i) {
      data.push(s.values);
      lines.push({
        label: s.name, stroke: palette[i % palette.length], width: 2, spanGaps: false,
        points: { show: true, size: 5 },
        value: function (u, v) { return format(chart.unit, s.stat, v); }
      });
    });
    Object.keys(chart.thresholds || {}).forEach(function (name) {
      var level = chart.thresholds[name];
      data.push(chart.x.map(function () { return level; }));
      lines.push({
        label: (name === "relax_above" ? "relax above " : "edit above ") + Math.round(level * 100) + "%",
        stroke: "#98a2b3", dash: [6, 4], width: 1, points: { show: false },
        value: function () { return Math.round(level * 100) + "%"; }
      });
    });
    var daily = chart.bucket === "day";
    var opts = {
      width: Math.max(280, el.clientWidth), height: 240,
      scales: { x: { time: true }, y: chart.unit === "share" ? { range: [0, 1] } : {} },
      axes: [
        { values: daily ? "{YYYY}-{MM}-{DD}" : "{HH}:{mm}" },
        { size: 64, values: function (u, ticks) { return ticks.map(function (v) { return format(chart.unit, stat, v); }); } }
      ],
      series: lines,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); }
    };
    var plot = new uPlot(opts, data, el);
    window.addEventListener("resize", function () {
      plot.setSize({ width: Math.max(280, el.clientWidth), height: 240 });
    });
  }

  function load(el) {
    fetch(el.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        if (!answer.ok) { message(el, answer.body.error || "The chart could not be loaded."); return; }
        draw(el, answer.body);
      })
      .catch(function () { message(el, "The chart could not be loaded."); });
  }

  document.querySelectorAll(".chart[data-src]").forEach(load);
})();
