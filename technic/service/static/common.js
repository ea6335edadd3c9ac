// Shared helpers of the technic web page (no framework, no build step).
"use strict";
const technic = {
  async getJSON(url) {
    const r = await fetch(url, {headers: {Accept: "application/json"}});
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(technic.detail(body) || `${r.status} ${r.statusText}`);
    return body;
  },
  detail(body) {
    const d = body && body.detail;
    if (Array.isArray(d)) return d.map(e => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
    return d || "";
  },
  fmt(v, kind) {
    if (v === null || v === undefined || Number.isNaN(v)) return "—";
    switch (kind) {
      case "usd": return v.toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
      case "pct": return (v >= 0 ? "+" : "") + (100 * v).toFixed(1) + "%";
      case "f1": return v.toFixed(1);
      case "f0": return v.toFixed(0);
      case "f2": return v.toFixed(2);
      case "musd": return (v / 1e6).toLocaleString("en-US", {maximumFractionDigits: 1}) + "M";
      default: return String(v);
    }
  },
  el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  },
  facts(container, pairs) {
    container.replaceChildren(...pairs.map(([k, v]) =>
      technic.el("span", {}, `${k} `, technic.el("b", {}, v))));
  },
};
