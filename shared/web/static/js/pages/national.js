/* National dashboard: every city side by side with the national total, refreshed every few
   seconds. Aggregates only: no person appears on this side. */
"use strict";
const REFRESH_MS = 5000;
const METHODS = ["classroom", "e-learning", "blended", "workshop", "seminar", "project-based", "simulation", "mentoring"];
const TREND_METRICS = ["completions", "jp_credited", "attendance_rate", "completion_rate", "reaction", "learning_gain", "behaviour", "ikm", "cost_per_participant_jp"];

document.addEventListener("DOMContentLoaded", async () => {
  const { t, $, esc, num, pct, rupiah } = Bkm;
  await Bkm.start({ page: "national", signIn: false, national: true });
  const thisYear = new Date().getFullYear();
  Bkm.options($("#year"), [["", t("common.all")], ...[0, 1, 2, 3, 4].map((i) => [thisYear - i, String(thisYear - i)])]);
  $("#year").value = String(thisYear);
  Bkm.options($("#competency_type"), [["", t("common.all")], ...["technical", "managerial", "socio-cultural"].map((c) => [c, t("ctype." + c)])]);
  Bkm.options($("#method"), [["", t("common.all")], ...METHODS.map((m) => [m, t("method." + m)])]);
  Bkm.options($("#metric"), TREND_METRICS.map((m) => [m, t("metric." + m)]));
  let shown = null; // what is on screen: the CSV export writes exactly this
  let busy = false;

  const query = () => {
    const q = new URLSearchParams();
    for (const name of ["year", "competency_type", "method"]) if ($("#" + name).value) q.set(name, $("#" + name).value);
    return q;
  };

  /** Rows of the comparison table: [key, value(summary) -> number|null, format]. */
  const ROWS = [
    ["nat.jp_share", (s) => s.jp.share_at_least_target, pct],
    ["nat.jp_people", (s) => s.jp.at_least_target, (v) => num(v, 0)],
    ["nat.jp_below", (s) => s.jp.below_target, (v) => num(v, 0)],
    ["nat.jp_per_person", (s) => s.jp.jp_per_person, (v) => num(v, 1)],
    ["nat.sessions_scheduled", (s) => s.sessions.scheduled, (v) => num(v, 0)],
    ["nat.sessions_completed", (s) => s.sessions.completed, (v) => num(v, 0)],
    ["nat.sessions_cancelled", (s) => s.sessions.cancelled, (v) => num(v, 0)],
    ["nat.enrollments", (s) => s.enrollment.enrollments, (v) => num(v, 0)],
    ["nat.completions", (s) => s.enrollment.completions, (v) => num(v, 0)],
    ["nat.completion_rate", (s) => s.enrollment.completion_rate, pct],
    ["nat.attendance_rate", (s) => s.enrollment.attendance_rate, pct],
    ["nat.l1", (s) => s.reaction.mean_score, (v) => num(v, 2)],
    ["nat.l2_pre", (s) => s.learning.pre_mean, (v) => num(v, 1)],
    ["nat.l2_post", (s) => s.learning.post_mean, (v) => num(v, 1)],
    ["nat.l2_gain", (s) => s.learning.mean_gain, (v) => num(v, 1)],
    ["nat.l3", (s) => s.behaviour.applies_skills_share, pct],
    ["nat.l4_before", (s) => s.results.ikm_before, (v) => num(v, 2)],
    ["nat.l4_after", (s) => s.results.ikm_after, (v) => num(v, 2)],
    ["nat.jp_credited", (s) => s.cost.jp_credited, (v) => num(v, 0)],
    ["nat.actual_cost", (s) => s.cost.actual_rupiah, rupiah],
    ["nat.cost_per_jp", (s) => s.cost.cost_per_participant_jp_rupiah, rupiah],
  ];

  function render(data) {
    const cities = Object.keys(data.cities);
    const columns = [...cities.map((c) => [Bkm.cityName(c), data.cities[c]]), [t("nat.national"), data.national]];
    shown = { columns: columns.map(([name]) => name), rows: ROWS.map(([key, get]) => [t(key), ...columns.map(([, s]) => get(s))]) };
    $("#compare").innerHTML = `<table id="compare-table"><caption>${t("nat.compare_caption", { n: data.cities_reporting })}</caption>
      <thead><tr><th scope="col">${t("nat.measure")}</th>${columns.map(([name], i) => `<th scope="col" class="num${i === columns.length - 1 ? " total" : ""}">${esc(name)}</th>`).join("")}</tr></thead>
      <tbody>${ROWS.map(([key, get, fmt]) => `<tr data-row="${key}"><th scope="row">${t(key)}</th>${columns.map(([name, s], i) =>
        `<td class="num${i === columns.length - 1 ? " total" : ""}" data-city="${esc(name)}">${fmt(get(s))}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
    Charts.bars($("#jp-chart"), columns.map(([name, s]) => ({ label: name, value: (s.jp.share_at_least_target || 0) * 100 })),
      { format: (v) => num(v, 1) + "%", label: t("nat.jp_chart") });
    Charts.bars($("#cost-chart"), columns.map(([name, s]) => ({ label: name, value: s.cost.cost_per_participant_jp_rupiah || 0 })),
      { format: rupiah, label: t("nat.cost_chart") });
    const mix = (section, names) => {
      const keys = [...new Set(columns.flatMap(([, s]) => Object.keys(s[section])))];
      return [columns.map(([name, s]) => ({ label: name, parts: Object.fromEntries(keys.map((k) => [k, s[section][k]?.sessions.scheduled || 0])) })), keys, names];
    };
    const [mRows, mKeys] = mix("by_method");
    Charts.stacked($("#method-chart"), mRows, mKeys, { names: (k) => t("method." + k), label: t("nat.method_mix") });
    const [pRows, pKeys] = mix("by_provider");
    Charts.stacked($("#provider-chart"), pRows, pKeys, { names: (k) => t("provider." + k), label: t("nat.provider_mix") });
    shown.mixes = { method: [mRows, mKeys], provider: [pRows, pKeys] };
  }

  /** Each city's newest event and heartbeat: a city that is behind is not current here. */
  function reporting(rows) {
    const locale = Bkm.lang() === "id" ? "id-ID" : "en-GB";
    const when = (epoch) => epoch == null ? "–" : new Date(epoch * 1000).toLocaleString(locale);
    const entries = Object.entries(rows || {});
    $("#reporting").innerHTML = entries.length ? `<table id="reporting-table"><thead><tr><th scope="col">${t("nat.city")}</th><th scope="col">${t("nat.last_event")}</th><th scope="col">${t("nat.last_heard")}</th><th scope="col">${t("nat.state")}</th></tr></thead>
      <tbody>${entries.map(([c, r]) => `<tr data-city="${esc(c)}" data-behind="${r.behind}"><th scope="row">${esc(Bkm.cityName(c))}</th><td>${when(r.last_event_time)}</td><td>${when(r.last_heard)}</td><td>${r.behind ? `<span class="badge warn">${t("nat.behind")}</span>` : `<span class="badge ok">${t("nat.current")}</span>`}</td></tr>`).join("")}</tbody></table>`
      : `<p class="muted">${t("common.none")}</p>`;
  }

  async function trends(cities) {
    const metric = $("#metric").value;
    const q = query(); q.set("metric", metric);
    const series = await Promise.all([...cities.map(async (c) => ({ name: Bkm.cityName(c),
      points: (await Bkm.api(`/timeseries?${q}&city=${encodeURIComponent(c)}`)).points })),
      Bkm.api(`/timeseries?${q}`).then((r) => ({ name: t("nat.national"), points: r.points }))]);
    const ratio = /rate|behaviour/.test(metric);
    const fmt = metric.startsWith("cost") ? rupiah : ratio ? pct : (v) => num(v, 2);
    Charts.lines($("#trend-chart"), series, { format: fmt, label: t("metric." + metric), monthName: Bkm.month });
    const months = [...new Set(series.flatMap((s) => s.points.map((p) => p.month)))].sort();
    $("#trend-table").innerHTML = months.length ? `<table><thead><tr><th scope="col">${t("nat.month")}</th>${series.map((s) => `<th scope="col" class="num">${esc(s.name)}</th>`).join("")}</tr></thead>
      <tbody>${months.map((m) => `<tr><th scope="row">${Bkm.month(m)}</th>${series.map((s) => `<td class="num">${fmt(s.points.find((p) => p.month === m)?.value ?? null)}</td>`).join("")}</tr>`).join("")}</tbody></table>`
      : `<p class="muted">${t("common.none")}</p>`;
    shown.trend = { metric: t("metric." + metric), months, series };
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const data = await Bkm.api("/figures?" + query());
      render(data);
      reporting(data.reporting);
      await trends(Object.keys(data.cities));
      $("#updated").textContent = t("nat.updated", { time: new Date().toLocaleTimeString(Bkm.lang() === "id" ? "id-ID" : "en-GB") });
    } catch (err) {
      $("#updated").textContent = err.status === 503 ? t("nat.loading") : Bkm.describe(err);
    } finally { busy = false; }
  }

  /** CSV of what is on screen: the comparison table, the mixes and the trend. */
  function exportCsv() {
    if (!shown) return;
    const cell = (v) => { const s = v == null ? "" : String(v); return /[",;\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; };
    const line = (cells) => cells.map(cell).join(",");
    const filters = [...query()].map(([k, v]) => `${k}=${v}`).join(" ") || t("common.all");
    const out = [line([t("nat.filters"), filters]), line([t("nat.measure"), ...shown.columns]), ...shown.rows.map(line), ""];
    for (const [name, [rows, keys]] of Object.entries(shown.mixes)) {
      out.push(line([t(`nat.${name}_mix`), ...keys.map((k) => t(`${name}.${k}`))]), ...rows.map((r) => line([r.label, ...keys.map((k) => r.parts[k])])), "");
    }
    if (shown.trend) {
      out.push(line([shown.trend.metric, ...shown.trend.series.map((s) => s.name)]));
      for (const m of shown.trend.months) out.push(line([m, ...shown.trend.series.map((s) => s.points.find((p) => p.month === m)?.value)]));
    }
    const blob = new Blob([out.join("\r\n")], { type: "text/csv;charset=utf-8" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `bangkom-nasional-${$("#year").value || "semua"}.csv`;
    document.body.appendChild(a); a.click(); a.remove();
  }

  for (const id of ["year", "competency_type", "method", "metric"]) $("#" + id).addEventListener("change", refresh);
  $("#export").addEventListener("click", exportCsv);
  await refresh();
  setInterval(refresh, REFRESH_MS);
});
