/* Small SVG charts: horizontal bars, stacked share bars, monthly lines. No library needed.
   Every chart has role="img" and a label; the exact numbers are always in a table nearby. */
"use strict";

const Charts = (() => {
  const COLOURS = ["var(--c1)", "var(--c2)", "var(--c3)", "var(--c4)", "var(--c5)", "var(--c6)", "var(--c7)", "var(--c8)"];
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

  /** items: [{label, value}]; format(value) -> text shown after the bar. */
  function bars(el, items, { format = String, label = "" } = {}) {
    const max = Math.max(1e-9, ...items.map((i) => i.value || 0));
    const row = 26, left = 130, width = 520, right = 90;
    const rows = items.map((item, i) => {
      const w = ((item.value || 0) / max) * (width - left - right);
      const y = i * row;
      return `<text x="${left - 6}" y="${y + 17}" text-anchor="end">${esc(item.label)}</text>
        <rect x="${left}" y="${y + 5}" width="${Math.max(w, 0)}" height="16" fill="${COLOURS[i % COLOURS.length]}"></rect>
        <text x="${left + w + 6}" y="${y + 17}">${esc(format(item.value))}</text>`;
    }).join("");
    el.innerHTML = `<svg class="chart" viewBox="0 0 ${width} ${Math.max(items.length * row, row)}" role="img" aria-label="${esc(label)}">${rows}</svg>`;
  }

  /** rows: [{label, parts: {key: value}}]; keys: ordered part names; names(key) -> legend text. */
  function stacked(el, rows, keys, { names = String, label = "" } = {}) {
    const row = 28, left = 130, width = 520;
    const body = rows.map((r, i) => {
      const total = keys.reduce((s, k) => s + (r.parts[k] || 0), 0);
      let x = left;
      const y = i * row;
      const parts = keys.map((k, j) => {
        const w = total ? ((r.parts[k] || 0) / total) * (width - left - 10) : 0;
        const rect = w > 0 ? `<rect x="${x}" y="${y + 5}" width="${w}" height="18" fill="${COLOURS[j % COLOURS.length]}"><title>${esc(names(k))}: ${r.parts[k]}</title></rect>` : "";
        x += w;
        return rect;
      }).join("");
      return `<text x="${left - 6}" y="${y + 19}" text-anchor="end">${esc(r.label)}</text>${parts}`;
    }).join("");
    const legend = keys.map((k, j) => `<li><i style="background:${COLOURS[j % COLOURS.length]}"></i>${esc(names(k))}</li>`).join("");
    el.innerHTML = `<svg class="chart" viewBox="0 0 ${width} ${Math.max(rows.length * row, row)}" role="img" aria-label="${esc(label)}">${body}</svg><ul class="legend">${legend}</ul>`;
  }

  /** series: [{name, points: [{month: "YYYY-MM", value}]}]; one line per series. */
  function lines(el, series, { format = String, label = "", monthName = (m) => m } = {}) {
    const months = [...new Set(series.flatMap((s) => s.points.map((p) => p.month)))].sort();
    const values = series.flatMap((s) => s.points.map((p) => p.value)).filter((v) => v != null);
    const width = 720, height = 240, left = 80, bottom = 30, top = 12;
    if (!months.length) { el.innerHTML = ""; return; }
    const max = Math.max(1e-9, ...values);
    const x = (m) => left + (months.length === 1 ? (width - left) / 2 : (months.indexOf(m) / (months.length - 1)) * (width - left - 20));
    const y = (v) => top + (1 - v / max) * (height - top - bottom);
    const paths = series.map((s, i) => {
      const pts = s.points.filter((p) => p.value != null);
      const d = pts.map((p, j) => `${j ? "L" : "M"}${x(p.month).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
      const dots = pts.map((p) => `<circle cx="${x(p.month)}" cy="${y(p.value)}" r="3" fill="${COLOURS[i % COLOURS.length]}"><title>${esc(s.name)} ${esc(monthName(p.month))}: ${esc(format(p.value))}</title></circle>`).join("");
      return `<path d="${d}" fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="2"></path>${dots}`;
    }).join("");
    const axis = `<line x1="${left}" y1="${height - bottom}" x2="${width}" y2="${height - bottom}" stroke="#6b7682"></line>
      <text x="${left - 6}" y="${top + 8}" text-anchor="end">${esc(format(max))}</text>
      <text x="${left - 6}" y="${height - bottom}" text-anchor="end">0</text>` +
      [months[0], months[months.length - 1]].map((m) => `<text x="${x(m)}" y="${height - 10}" text-anchor="middle">${esc(monthName(m))}</text>`).join("");
    const legend = series.map((s, i) => `<li><i style="background:${COLOURS[i % COLOURS.length]}"></i>${esc(s.name)}</li>`).join("");
    el.innerHTML = `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(label)}">${axis}${paths}</svg><ul class="legend">${legend}</ul>`;
  }

  return { bars, stacked, lines };
})();
