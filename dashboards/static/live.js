// The live view: fetch the panels' rows every few seconds and draw them (plotly.js for charts,
// plain tables for tables). Numbers and dates arrive formatted for Vietnamese readers; charts
// use plotly's separators ',.' (decimal ',', thousands '.').
"use strict";
const REFRESH_MS = 5000;
const CHART_KINDS = new Set(["barchart", "bargauge"]);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function panelBox(panel) {
  let box = document.getElementById("panel-" + panel.key);
  if (!box) {
    box = element("div", "panel" + (CHART_KINDS.has(panel.kind) ? "" : " wide"));
    box.id = "panel-" + panel.key;
    box.append(element("h2"), element("div", "body"));
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

// Every value goes in as text (textContent), never as markup: a facility's name is data.
function drawTable(panel, body) {
  if (!body.classList.contains("scroll")) body.classList.add("scroll");
  const head = element("tr");
  for (const c of panel.columns) head.appendChild(element("th", "", c.label));
  const rows = element("tbody");
  panel.cells.forEach((cells, i) => {
    const tr = element("tr");
    for (const c of panel.columns) {
      const value = cells[c.name] === null || cells[c.name] === undefined ? "—" : String(cells[c.name]);
      const numeric = c.kind === "number" || c.kind === "percent";
      const td = element("td", c.kind === "status" ? "status" : numeric ? "num" : "", value);
      if (c.kind === "status") td.style.background = panel.colours[i];
      tr.appendChild(td);
    }
    rows.appendChild(tr);
  });
  const table = element("table");
  table.append(element("thead"), rows);
  table.tHead.appendChild(head);
  body.replaceChildren(table);
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
