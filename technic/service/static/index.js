// The scan table: the latest run (or ?run=ID), sorted and filtered on the server, and a
// form that starts a scan and follows its Server-Sent Events.
"use strict";
const COLUMNS = [
  ["rank", "#", "f0"], ["symbol", "Symbol", "sym"], ["sector", "Sector", "text"],
  ["close", "Close", "usd"], ["ics", "ICS (rank)", "f1"], ["tech_rating", "TechRating", "f1"],
  ["trend_score", "Trend", "f0"], ["momentum_score", "Mom.", "f0"], ["volatility_score", "Vol.", "f0"],
  ["volume_score", "Volume", "f0"], ["merit", "MERIT", "f1"],
  ["alpha_5d", "α 5d", "pct"], ["ret_12_1", "Ret 12-1", "pct"], ["rsi_14", "RSI", "f0"],
  ["dollar_volume_20", "$Vol 20d", "musd"],
];
const state = Object.assign({run: null, sort: "rank", order: "asc", sector: "", min_price: "",
                             where: "", limit: "100", offset: 0},
                            Object.fromEntries(new URLSearchParams(location.search)));
state.offset = Number(state.offset) || 0;
const $ = id => document.getElementById(id);

function query() {
  const q = new URLSearchParams({columns: COLUMNS.map(c => c[0]).join(","), sort: state.sort,
                                 order: state.order, limit: state.limit, offset: state.offset});
  if (state.sector) q.append("sector", state.sector);
  if (state.min_price !== "") q.append("min_price", state.min_price);
  if (state.where) q.append("where", state.where);
  return q;
}

function syncUrl() {
  const q = new URLSearchParams();
  for (const k of ["run", "sort", "order", "sector", "min_price", "where", "limit", "offset"]) {
    if (state[k] !== null && state[k] !== "" && state[k] !== undefined) q.set(k, state[k]);
  }
  history.replaceState(null, "", "?" + q.toString());
}

function renderRun(run) {
  $("title").textContent = `run ${run.run_id} — ${run.preset || "custom"} scan as of ${run.as_of}` +
    (state.run ? "" : " (latest)");
  technic.facts($("run-facts"), [["run", run.run_id], ["as of", run.as_of], ["status", run.status],
    ["preset", run.preset || "custom"], ["regime", run.regime || "—"],
    ["finished", (run.finished_at || "").slice(0, 19).replace("T", " ")]]);
  const c = run.counts || {};
  technic.facts($("run-counts"), [["input", c.input], ...Object.entries(c)
    .filter(([k]) => k.startsWith("dropped_")).map(([k, v]) => [k.replace("dropped_", "− "), v]),
    ["passed", c.passed]]);
  technic.facts($("run-timings"), Object.entries(run.timings || {}).map(([k, v]) => [k, v.toFixed(3)]));
}

function renderTable(page) {
  const head = technic.el("tr", {});
  for (const [key, label, kind] of COLUMNS) {
    const th = technic.el("th", {class: (kind === "text" || kind === "sym") ? "" : "num",
                                 "data-col": key}, label);
    if (state.sort === key) th.classList.add("sorted", ...(state.order === "desc" ? ["desc"] : []));
    th.addEventListener("click", () => {
      state.order = state.sort === key && state.order === "asc" ? "desc" :
        (state.sort === key ? "asc" : (kind === "text" || kind === "sym" || key === "rank" ? "asc" : "desc"));
      state.sort = key; state.offset = 0; load();
    });
    head.append(th);
  }
  $("results").tHead.replaceChildren(head);
  const rows = page.results.map(r => technic.el("tr", {}, ...COLUMNS.map(([key, , kind]) => {
    if (kind === "sym") return technic.el("td", {}, technic.el("a", {href: `/symbol/${encodeURIComponent(r.symbol)}`}, r.symbol));
    if (kind === "text") return technic.el("td", {}, r[key] ?? "—");
    return technic.el("td", {class: "num"}, technic.fmt(r[key], kind));
  })));
  $("results").tBodies[0].replaceChildren(...rows);
  const first = page.total ? page.offset + 1 : 0;
  $("shown").textContent = `rows ${first}–${page.offset + page.results.length} of ${page.total}` +
    ` passing the filters (sorted by ${state.sort} ${state.order})`;
  $("prev").disabled = page.offset === 0;
  $("next").disabled = page.offset + page.results.length >= page.total;
}

function fillSectors(select, sectors, chosen) {
  select.replaceChildren(technic.el("option", {value: ""}, "all sectors"),
    ...sectors.map(s => technic.el("option", {value: s}, s)));
  select.value = chosen || "";
}

async function load() {
  syncUrl();
  const base = state.run ? `/v1/scans/${encodeURIComponent(state.run)}` : "/v1/scans/latest";
  try {
    const page = await technic.getJSON(`${base}?${query()}`);
    renderRun(page.run);
    fillSectors($("f-sector"), page.sectors, state.sector);
    if ($("s-sector").options.length <= 1) fillSectors($("s-sector"), page.sectors, "");
    $("f-min-price").value = state.min_price;
    $("f-where").value = state.where;
    $("f-error").textContent = "";
    $("f-limit").value = state.limit;
    renderTable(page);
  } catch (e) {
    if (state.where && e.message.startsWith("where:")) {  // a bad filter: say so by the box
      $("f-error").textContent = e.message;
    } else {
      $("title").textContent = `no scan to show: ${e.message}`;
    }
    $("results").tBodies[0].replaceChildren();
  }
  document.body.dataset.loads = String(Number(document.body.dataset.loads || 0) + 1);
}

$("filters").addEventListener("submit", ev => {
  ev.preventDefault();
  state.sector = $("f-sector").value; state.min_price = $("f-min-price").value;
  state.where = $("f-where").value.trim();
  state.limit = $("f-limit").value; state.offset = 0; load();
});
$("f-reset").addEventListener("click", () => {
  Object.assign(state, {sort: "rank", order: "asc", sector: "", min_price: "", where: "",
                        offset: 0}); load();
});
$("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - Number(state.limit)); load(); });
$("next").addEventListener("click", () => { state.offset += Number(state.limit); load(); });

// ---- start a scan and follow it
$("s-key").value = sessionStorage.getItem("technic-api-key") || "";
$("scan-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const key = $("s-key").value;
  sessionStorage.setItem("technic-api-key", key);
  const body = {min_price: Number($("s-min-price").value || 0)};
  if ($("s-sector").value) body.sectors = [$("s-sector").value];
  const status = $("s-status"), bar = $("s-progress");
  status.className = "muted"; status.textContent = "starting …";
  $("s-run").disabled = true;
  try {
    const r = await fetch("/v1/scans", {method: "POST", body: JSON.stringify(body),
      headers: {"Content-Type": "application/json", "X-API-Key": key}});
    const started = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(technic.detail(started) || `${r.status} ${r.statusText}`);
    follow(started.run_id, bar, status);
  } catch (e) {
    status.className = "error"; status.textContent = `scan refused: ${e.message}`;
    $("s-run").disabled = false;
  }
});

function follow(runId, bar, status) {
  bar.hidden = false;
  let received = 0;
  const es = new EventSource(`/v1/scans/${runId}/events`);
  es.addEventListener("progress", ev => {
    const p = JSON.parse(ev.data);
    bar.firstElementChild.style.width = `${Math.round(100 * (p.index || 0) / (p.of + 1))}%`;
    status.textContent = `run ${runId}: ${p.stage} (${p.index || 0}/${p.of})`;
  });
  es.addEventListener("results", ev => {
    received += JSON.parse(ev.data).rows.length;
    status.textContent = `run ${runId}: ${received} results received …`;
  });
  es.addEventListener("done", ev => {
    const d = JSON.parse(ev.data);
    es.close();
    bar.firstElementChild.style.width = "100%";
    status.textContent = `run ${runId} done: ${d.results} ranked symbols in ${(d.timings_s.total || 0).toFixed(2)} s`;
    $("s-run").disabled = false;
    Object.assign(state, {run: String(runId), offset: 0}); load();
  });
  es.addEventListener("failed", ev => {
    status.className = "error"; status.textContent = `run ${runId} failed: ${JSON.parse(ev.data).error}`;
    es.close(); $("s-run").disabled = false;
  });
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) $("s-run").disabled = false; };
}

load();
