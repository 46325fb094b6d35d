// The live view: fetch the panels' rows every few seconds and draw them (plotly.js for charts,
// plain tables for tables). Numbers and dates arrive formatted for Vietnamese readers; charts
// use plotly's separators ',.' (decimal ',', thousands '.').
"use strict";
const REFRESH_MS = 5000;
const CHART_KINDS = new Set(["barchart", "bargauge"]);

function panelBox(panel) {
  let box = document.getElementById("panel-" + panel.key);
  if (!box) {
    box = document.createElement("div");
    box.id = "panel-" + panel.key;
    box.className = "panel" + (CHART_KINDS.has(panel.kind) ? "" : " wide");
    box.innerHTML = "<h2></h2><div class='body'></div>";
    document.getElementById("panels").appendChild(box);
  }
  box.querySelector("h2").textContent = panel.title;
  return box.querySelector(".body");
}

function numericColumns(panel) {
  return panel.columns.filter((c) => c.kind === "number" || c.kind === "percent");
}

function drawChart(panel, body) {
  if (!body.classList.contains("chart")) body.classList.add("chart");
  const labels = panel.rows.map((r) => String(r[panel.label_column]));
  let traces;
  if (panel.key === "dosing_progress") {
    traces = [{ type: "bar", orientation: "h", y: labels, x: panel.rows.map((r) => r.progress_pct),
      marker: { color: panel.colours }, text: panel.cells.map((c) => c.progress_pct),
      textposition: "auto", name: "Tiến độ · Progress" }];
  } else if (panel.key === "alerts_by_severity") {
    traces = [{ type: "bar", x: panel.cells.map((c) => c.severity), y: panel.rows.map((r) => r.open_alerts),
      marker: { color: panel.colours }, name: "Đang mở · Open" }];
  } else {
    traces = numericColumns(panel).map((c) => ({ type: "bar", x: labels, y: panel.rows.map((r) => r[c.name]), name: c.label }));
  }
  const layout = { separators: ",.", margin: { l: 220, r: 10, t: 10, b: 40 }, showlegend: traces.length > 1,
    barmode: "group", xaxis: { automargin: true }, yaxis: { automargin: true } };
  window.Plotly.react(body, traces, layout, { displayModeBar: false, responsive: true });
}

function drawTable(panel, body) {
  if (!body.classList.contains("scroll")) body.classList.add("scroll");
  const head = "<tr>" + panel.columns.map((c) => "<th>" + c.label + "</th>").join("") + "</tr>";
  const rows = panel.cells.map((cells, i) => "<tr>" + panel.columns.map((c) => {
    const value = cells[c.name] === null || cells[c.name] === undefined ? "—" : cells[c.name];
    if (c.kind === "status") {
      return "<td class='status' style='background:" + panel.colours[i] + "'>" + value + "</td>";
    }
    const cls = c.kind === "number" || c.kind === "percent" ? " class='num'" : "";
    return "<td" + cls + ">" + value + "</td>";
  }).join("") + "</tr>").join("");
  body.innerHTML = "<table><thead>" + head + "</thead><tbody>" + rows + "</tbody></table>";
}

async function refresh() {
  try {
    const response = await fetch("data", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const doc = await response.json();
    document.getElementById("title").textContent = "ostwatch — " + doc.title;
    document.getElementById("updated").textContent = "cập nhật · updated " + doc.updated;
    for (const panel of doc.panels) {
      const body = panelBox(panel);
      if (CHART_KINDS.has(panel.kind)) drawChart(panel, body); else drawTable(panel, body);
    }
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  } catch (err) {
    document.getElementById("updated").textContent = "lỗi · error: " + err.message;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
