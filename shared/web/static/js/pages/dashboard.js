/* City dashboard: everyone's JP toward 20 this year WITH names (joined here in the browser:
   names from the enrollment service, JP from this one), sessions this month, cancellations by
   reason, and what the nation found. */
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const { t, $, esc } = Bkm;
  await Bkm.start({ page: "dashboard" });
  const year = new Date().getFullYear();
  const ym = Bkm.today().slice(0, 7);
  $("#jp-year").textContent = year;
  $("#month-name").textContent = Bkm.month(ym);
  let rows = [];
  let names = {};

  function jpTable() {
    const q = $("#jp-search").value.trim().toLowerCase();
    const only = $("#jp-only").checked;
    const shown = rows.filter((r) => (!only || r.jp < r.target) && (!q || `${r.name} ${r.unit} ${r.nip}`.toLowerCase().includes(q)));
    $("#jp-table").innerHTML = `<table id="jp-progress"><thead><tr><th scope="col">${t("field.name")}</th><th scope="col">${t("field.unit")}</th>
      <th scope="col" class="num">JP</th><th scope="col">${t("dash.progress")}</th></tr></thead><tbody>
      ${shown.map((r) => `<tr data-person="${esc(r.person_id)}"><td>${esc(r.name)}<br><small class="muted">${esc(r.nip)}</small></td><td>${esc(r.unit)}</td>
        <td class="num">${Bkm.num(r.jp, 0)}</td>
        <td><span class="progress${r.jp >= r.target ? " done" : ""}" role="img" aria-label="${Bkm.num(Math.min(r.jp / r.target, 1) * 100, 0)}%"><span style="width:${Math.min(r.jp / r.target, 1) * 100}%"></span></span>
        ${r.jp >= r.target ? `<span class="badge ok">${t("dash.reached")}</span>` : `<span class="badge warn">${t("dash.short", { n: r.target - r.jp })}</span>`}</td></tr>`).join("")
        || `<tr><td colspan="4" class="muted">${t("common.none")}</td></tr>`}</tbody></table>`;
  }

  async function jp() {
    try {
      const [people, ledger] = await Promise.all([Bkm.api("/ui/api/people", { service: "enrollment" }), Bkm.api(`/ui/api/jp?year=${year}`)]);
      names = Object.fromEntries(people.items.map((p) => [p.person_id, p]));
      rows = people.items.map((p) => ({ ...p, jp: ledger.jp[p.person_id] || 0, target: ledger.target_jp }))
        .sort((a, b) => a.jp - b.jp || a.name.localeCompare(b.name));
      const reached = rows.filter((r) => r.jp >= r.target).length;
      $("#jp-kpis").innerHTML = `<div><dt>${t("dash.staff")}</dt><dd>${Bkm.num(rows.length, 0)}</dd></div>
        <div><dt>${t("dash.reached_20")}</dt><dd id="kpi-reached">${Bkm.num(reached, 0)}</dd></div>
        <div><dt>${t("dash.share")}</dt><dd>${Bkm.pct(rows.length ? reached / rows.length : null)}</dd></div>
        <div><dt>${t("dash.jp_total")}</dt><dd id="kpi-jp">${Bkm.num(rows.reduce((s, r) => s + r.jp, 0), 0)}</dd></div>`;
      jpTable();
    } catch (err) { Bkm.loadFailed($("#jp-table"), err); }
  }

  async function month() {
    try {
      const sessions = await Bkm.api("/sessions");
      const here = sessions.filter((s) => s.start_date.slice(0, 7) === ym || s.end_date.slice(0, 7) === ym).reverse();
      $("#month-sessions").innerHTML = `<table><thead><tr><th scope="col">${t("field.title")}</th><th scope="col">${t("field.start_date")}</th>
        <th scope="col" class="num">${t("sessions.participants")}</th><th scope="col">${t("sessions.status")}</th></tr></thead><tbody>
        ${here.map((s) => `<tr><td><a href="/ui/session?id=${encodeURIComponent(s.session_id)}">${esc(s.title)}</a></td><td>${Bkm.date(s.start_date)}</td>
          <td class="num">${s.participants} / ${s.capacity}</td><td>${t("status." + s.status)}</td></tr>`).join("")
          || `<tr><td colspan="4" class="muted">${t("common.none")}</td></tr>`}</tbody></table>`;
      const cancelled = sessions.filter((s) => s.status === "cancelled" && s.start_date.startsWith(String(year)));
      return cancelled.length;
    } catch (err) { Bkm.loadFailed($("#month-sessions"), err); return 0; }
  }

  async function cancellations(sessionsCancelled) {
    try {
      const data = await Bkm.api(`/ui/api/cancellations?year=${year}`, { service: "enrollment" });
      const items = Object.entries(data.by_reason).map(([r, n]) => ({ label: t("reason." + r), value: n }));
      Charts.bars($("#cancel-chart"), items, { format: (v) => Bkm.num(v, 0), label: t("dash.cancellations") });
      $("#cancel-table").innerHTML = `<table><caption>${t("dash.cancellations_caption", { year })}</caption><tbody>
        ${items.map((i) => `<tr><th scope="row">${esc(i.label)}</th><td class="num">${Bkm.num(i.value, 0)}</td></tr>`).join("")}
        <tr><th scope="row">${t("dash.sessions_cancelled")}</th><td class="num">${Bkm.num(sessionsCancelled, 0)}</td></tr></tbody></table>`;
    } catch (err) { Bkm.loadFailed($("#cancel-table"), err); }
  }

  async function insights() {
    try {
      const items = await Bkm.api("/insights");
      $("#insights").innerHTML = items.length ? items.map((i) => `<article class="card">
        <h3>${esc(i.title)} <span class="badge warn">${t("insight." + i.kind)}</span></h3>
        <p>${esc(i.detail)}</p><p class="muted">${i.year}${i.published_at ? " · " + Bkm.date(i.published_at) : ""}</p>
        ${i.person_ids?.length ? `<details><summary>${t("dash.people_named", { n: i.person_ids.length })}</summary><ul>
          ${i.person_ids.map((p) => `<li>${names[p] ? esc(names[p].name) + " · " + esc(names[p].unit) : esc(p)}</li>`).join("")}</ul></details>` : ""}
        </article>`).join("") : `<p class="muted">${t("dash.no_insights")}</p>`;
    } catch (err) { Bkm.loadFailed($("#insights"), err); }
  }

  $("#jp-filter").addEventListener("submit", (e) => e.preventDefault());
  $("#jp-search").addEventListener("input", jpTable);
  $("#jp-only").addEventListener("change", jpTable);
  await jp();
  const cancelledSessions = await month();
  await Promise.all([cancellations(cancelledSessions), insights()]);
});
