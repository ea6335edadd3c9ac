// One symbol: candlesticks with SMA and Bollinger Bands, volume, RSI, its score history and
// its latest stored features (plotly.js from the plotly Python package).
"use strict";
const symbol = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const $ = id => document.getElementById(id);
const FEATURES = [
  ["close", "Close", "usd"], ["ret_21d", "Return 21d", "pct"], ["ret_63d", "Return 63d", "pct"],
  ["ret_12_1", "Return 12-1", "pct"], ["rsi_14", "RSI 14", "f1"], ["adx_14", "ADX 14", "f1"],
  ["natr_14", "NATR 14 (%)", "f2"], ["realized_vol_20", "Realized vol 20", "pct"],
  ["dist_52w_high", "From 52w high", "pct"], ["dollar_volume_20", "$Volume 20d", "musd"],
  ["rel_volume_20", "Rel. volume 20", "f2"], ["sma_200", "SMA 200", "usd"],
];

function chart(d) {
  const b = d.bars, o = d.overlays, x = b.date;
  const line = (y, name, color, extra) => Object.assign(
    {type: "scatter", mode: "lines", x, y, name, line: {color, width: 1.3}, xaxis: "x", yaxis: "y"}, extra);
  const traces = [
    line(o.bb_upper, "BB upper", "rgba(120,120,160,.6)", {line: {color: "rgba(120,120,160,.6)", width: 1, dash: "dot"}}),
    line(o.bb_lower, "BB lower", "rgba(120,120,160,.6)", {line: {color: "rgba(120,120,160,.6)", width: 1, dash: "dot"},
                                                           fill: "tonexty", fillcolor: "rgba(120,120,160,.08)"}),
    {type: "candlestick", x, open: b.open, high: b.high, low: b.low, close: b.close, name: symbol,
     xaxis: "x", yaxis: "y"},
    line(o.sma_20, "SMA 20", "#f59e0b"),
    line(o.sma_50, "SMA 50", "#7c3aed"),
    {type: "bar", x, y: b.volume, name: "Volume", marker: {color: "rgba(47,111,237,.45)"},
     xaxis: "x", yaxis: "y2"},
    line(o.rsi_14, "RSI 14", "#0e9384", {yaxis: "y3"}),
  ];
  const layout = {
    height: 640, margin: {l: 60, r: 20, t: 10, b: 30}, showlegend: true,
    legend: {orientation: "h", y: 1.04, traceorder: "normal"}, hovermode: "x unified",
    xaxis: {rangeslider: {visible: false}, rangebreaks: [{bounds: ["sat", "mon"]}], anchor: "y3"},
    yaxis: {domain: [0.42, 1], title: {text: "USD"}},
    yaxis2: {domain: [0.24, 0.38], title: {text: "volume"}},
    yaxis3: {domain: [0, 0.2], range: [0, 100], title: {text: "RSI"}},
    shapes: [30, 70].map(v => ({type: "line", xref: "paper", x0: 0, x1: 1, yref: "y3", y0: v, y1: v,
                                line: {color: "#98a2b3", width: 1, dash: "dash"}})),
  };
  Plotly.newPlot("chart", traces, layout, {responsive: true, displaylogo: false});
}

function history(ranks) {
  const x = ranks.map(r => r.as_of);
  const universe = Math.max(1, ...ranks.map(r => r.passed || 1));
  Plotly.newPlot("history", [
    {type: "scatter", mode: "lines+markers", x, y: ranks.map(r => r.tech_rating), name: "TechRating", yaxis: "y"},
    {type: "scatter", mode: "lines+markers", x, y: ranks.map(r => r.rank), name: "rank", yaxis: "y2"},
  ], {height: 300, margin: {l: 50, r: 50, t: 10, b: 40}, legend: {orientation: "h"},
      xaxis: {type: "category", title: {text: "scan date"}},
      yaxis: {title: {text: "TechRating"}, range: [0, 100]},
      yaxis2: {title: {text: `rank (1 = best, of ${universe})`}, overlaying: "y", side: "right",
               range: [universe, 1]}},
  {responsive: true, displaylogo: false});
}

async function main() {
  try {
    const d = await technic.getJSON(`/v1/symbols/${encodeURIComponent(symbol)}?days=250`);
    const ref = d.reference, last = d.ranks.length ? d.ranks[d.ranks.length - 1] : null;
    document.title = `technic — ${d.symbol}`;
    $("title").textContent = `${d.symbol} — ${ref.name || ""}`;
    technic.facts($("facts"), [["symbol", d.symbol], ["sector", ref.sector || "—"],
      ["industry", ref.industry || "—"], ["exchange", ref.exchange || "—"],
      ["rank", last ? `${last.rank} of ${last.passed} (${last.as_of})` : "not ranked"],
      ["TechRating", last ? technic.fmt(last.tech_rating, "f1") : "—"]]);
    chart(d);
    history(d.ranks);
    const f = d.features || {};
    $("features").tBodies[0].replaceChildren(
      technic.el("tr", {}, technic.el("td", {}, "date"), technic.el("td", {class: "num"}, f.date || "—")),
      ...FEATURES.map(([k, label, kind]) => technic.el("tr", {}, technic.el("td", {}, label),
        technic.el("td", {class: "num"}, technic.fmt(f[k], kind)))));
  } catch (e) {
    $("title").textContent = `cannot show ${symbol}: ${e.message}`;
  }
}
main();
