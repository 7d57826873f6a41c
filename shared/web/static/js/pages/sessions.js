/* Sessions: a month calendar, the list, and the form to schedule a new one. */
"use strict";
const METHODS = ["classroom", "e-learning", "blended", "workshop", "seminar", "project-based", "simulation", "mentoring"];
const PROVIDERS = ["city", "university", "ministry", "national-institute", "provincial-agency", "professional-organisation"];

document.addEventListener("DOMContentLoaded", async () => {
  const { t, $, esc } = Bkm;
  await Bkm.start({ page: "sessions" });
  const form = $("#session-form");
  Bkm.options($("#competency_type"), ["technical", "managerial", "socio-cultural"].map((c) => [c, t("ctype." + c)]));
  Bkm.options($("#method"), METHODS.map((m) => [m, t("method." + m)]));
  Bkm.options($("#provider"), PROVIDERS.map((p) => [p, t("provider." + p)]));
  let sessions = [];
  const now = new Date();
  let shown = { y: now.getFullYear(), m: now.getMonth() + 1 };

  const statusBadge = (s) => `<span class="badge ${s === "completed" ? "ok" : s === "cancelled" ? "bad" : "warn"}">${t("status." + s)}</span>`;

  function calendar() {
    const ym = `${shown.y}-${String(shown.m).padStart(2, "0")}`;
    $("#calendar-month").textContent = Bkm.month(ym);
    const first = new Date(Date.UTC(shown.y, shown.m - 1, 1));
    const lead = (first.getUTCDay() + 6) % 7; // weeks start on Monday
    const days = new Date(Date.UTC(shown.y, shown.m, 0)).getUTCDate();
    const names = [...Array(7)].map((_, i) => new Intl.DateTimeFormat(Bkm.lang() === "id" ? "id-ID" : "en-GB", { weekday: "short", timeZone: "UTC" }).format(new Date(Date.UTC(2024, 0, 1 + i))));
    let cells = names.map((n) => `<div class="dow" aria-hidden="true">${n}</div>`).join("");
    cells += `<div class="day out"></div>`.repeat(lead);
    for (let d = 1; d <= days; d++) {
      const iso = `${ym}-${String(d).padStart(2, "0")}`;
      const here = sessions.filter((s) => s.start_date <= iso && iso <= s.end_date && s.status !== "cancelled");
      cells += `<div class="day${iso === Bkm.today() ? " today" : ""}"><span>${d}</span>${here.map((s) =>
        `<a href="/ui/session?id=${encodeURIComponent(s.session_id)}" title="${esc(s.title)}">${esc(s.title)}</a>`).join("")}</div>`;
    }
    $("#calendar").innerHTML = cells;
  }

  async function load() {
    const where = $("#session-list");
    try {
      sessions = await Bkm.api("/sessions");
      where.innerHTML = `<table><thead><tr><th scope="col">${t("field.title")}</th><th scope="col">${t("sessions.dates")}</th>
        <th scope="col">${t("field.method")}</th><th scope="col" class="num">${t("field.jp")}</th><th scope="col" class="num">${t("sessions.participants")}</th>
        <th scope="col">${t("sessions.status")}</th><th scope="col">${t("sessions.open")}</th></tr></thead><tbody>
        ${sessions.map((s) => `<tr data-session="${esc(s.session_id)}"><td>${esc(s.title)}<br><small class="muted">${esc(s.session_id)} · ${t("ctype." + s.competency_type)} · ${esc(s.competency)}</small></td>
          <td>${Bkm.date(s.start_date)}${s.end_date !== s.start_date ? " – " + Bkm.date(s.end_date) : ""}</td>
          <td>${t("method." + s.method)}</td><td class="num">${s.jp}</td><td class="num">${s.participants} / ${s.capacity}</td>
          <td>${statusBadge(s.status)}</td>
          <td><a href="/ui/session?id=${encodeURIComponent(s.session_id)}">${t("sessions.manage")}</a><br>
          ${s.status === "scheduled" ? `<a href="${Bkm.link("enrollment", "/ui/enrollment?session=" + encodeURIComponent(s.session_id))}">${t("sessions.enroll")}</a>` : ""}</td></tr>`).join("")
          || `<tr><td colspan="7" class="muted">${t("common.none")}</td></tr>`}</tbody></table>`;
      calendar();
    } catch (err) { Bkm.loadFailed(where, err); }
  }

  $("#prev-month").addEventListener("click", () => { shown = shown.m === 1 ? { y: shown.y - 1, m: 12 } : { y: shown.y, m: shown.m - 1 }; calendar(); });
  $("#next-month").addEventListener("click", () => { shown = shown.m === 12 ? { y: shown.y + 1, m: 1 } : { y: shown.y, m: shown.m + 1 }; calendar(); });

  Bkm.onSubmit(form, async () => {
    const body = Bkm.values(form);
    body.speakers = (body.speakers || "").split(",").map((s) => s.trim()).filter(Boolean);
    const session = await Bkm.api("/sessions", { method: "POST", body });
    Bkm.success(form, t("sessions.scheduled", { title: session.title, id: session.session_id }));
    form.reset();
    await load();
  });
  load();
});
