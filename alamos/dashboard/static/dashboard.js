/* alamos dashboard: charts (uPlot), the waterfall, row links, auto-refresh.
 * A static file, as the Content-Security-Policy allows no inline script.
 * Data comes from data- attributes written by the templates (JSON through
 * Jinja's tojson filter); nothing from the database is ever set as HTML:
 * only textContent and element.style (CSSOM) are written here. */
(function () {
  "use strict";

  var charts = [];
  window.alamosCharts = charts;

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  var PALETTE = ["--s0", "--s3", "--s2", "--s1", "--s4", "--s5"];

  function renderChart(el) {
    var data;
    try {
      data = JSON.parse(el.dataset.chart);
    } catch (e) {
      el.dataset.rendered = "error";
      return;
    }
    var names = Object.keys(data.series);
    var fg = css("--fg"), line = css("--line");
    var axis = { stroke: fg, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 } };
    var series = [{ label: "time (UTC)" }];
    names.forEach(function (name, i) {
      var colour = css(PALETTE[i % PALETTE.length]);
      var s = { label: name, stroke: colour, width: 1.5, spanGaps: false };
      if (data.points) {
        s.paths = function () { return null; };
        s.points = { show: true, size: 4, fill: colour };
      }
      series.push(s);
    });
    var width = Math.max(280, el.clientWidth - 16);
    var opts = {
      width: width,
      height: 190,
      series: series,
      scales: { x: { time: true } },
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      axes: [
        Object.assign({ label: "time (UTC)", labelSize: 22 }, axis),
        Object.assign({ label: data.unit, labelSize: 22, size: 56 }, axis),
      ],
      legend: { show: true },
      cursor: { drag: { x: true, y: false } },
    };
    var columns = [data.x].concat(names.map(function (n) { return data.series[n]; }));
    var plot = new uPlot(opts, columns, el);
    charts.push(plot);
    el.dataset.rendered = "1";
    el.dataset.axes = JSON.stringify(opts.axes.map(function (a) { return a.label; }));
  }

  function resizeCharts() {
    charts.forEach(function (plot) {
      var el = plot.root.parentNode;
      plot.setSize({ width: Math.max(280, el.clientWidth - 16), height: 190 });
    });
  }

  function layoutWaterfall() {
    var rows = document.querySelectorAll(".wf-row");
    rows.forEach(function (row) {
      var bar = row.querySelector(".wf-bar");
      bar.style.left = row.dataset.left + "%";
      bar.style.width = row.dataset.width + "%";
      var depth = Math.min(parseInt(row.dataset.depth, 10) || 0, 40);
      row.querySelector(".wf-name").style.paddingLeft = 8 + depth * 16 + "px";
      row.addEventListener("click", function () { select(row); });
      row.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(row); }
      });
    });
    var wanted = location.hash.slice(1);
    if (wanted) {
      var found = document.querySelector('.wf-row[data-span="' + CSS.escape(wanted) + '"]');
      if (found) { select(found); }
    }
  }

  function select(row) {
    document.querySelectorAll(".wf-row.selected").forEach(function (r) { r.classList.remove("selected"); });
    document.querySelectorAll(".span-detail").forEach(function (d) { d.hidden = true; });
    row.classList.add("selected");
    var detail = document.getElementById("detail-" + row.dataset.span);
    if (detail) { detail.hidden = false; }
    var hint = document.getElementById("details-hint");
    if (hint) { hint.hidden = true; }
    history.replaceState(null, "", "#" + row.dataset.span);
  }

  function rowLinks() {
    document.querySelectorAll("tr[data-href]").forEach(function (tr) {
      tr.addEventListener("click", function (ev) {
        if (ev.target.closest("a")) { return; }
        location.href = tr.dataset.href;
      });
    });
  }

  function autoRefresh() {
    var box = document.getElementById("auto-refresh");
    if (!box) { return; }
    var seconds = parseInt(document.body.dataset.refresh, 10) || 10;
    var timer = null;
    function arm() {
      if (timer) { clearTimeout(timer); timer = null; }
      if (box.checked) { timer = setTimeout(function () { location.reload(); }, seconds * 1000); }
    }
    try { box.checked = localStorage.getItem("alamos.refresh") === "1"; } catch (e) { /* no storage */ }
    box.addEventListener("change", function () {
      try { localStorage.setItem("alamos.refresh", box.checked ? "1" : "0"); } catch (e) { /* no storage */ }
      arm();
    });
    arm();
  }

  function start() {
    document.querySelectorAll("figure.chart[data-chart]").forEach(renderChart);
    layoutWaterfall();
    rowLinks();
    autoRefresh();
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(resizeCharts, 150);
    });
    document.body.dataset.ready = "1";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
