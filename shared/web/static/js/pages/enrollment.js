/* Enrollment: seat a person or put them on the waitlist; cancelling shows who was promoted. */
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const { t, $, esc } = Bkm;
  await Bkm.start({ page: "enrollment" });
  const form = $("#enroll-form");
  const select = $("#session_id");
  Bkm.options($("#nominated_by"), ["supervisor", "self"].map((n) => [n, t("nominated." + n)]));
  let promotedIds = new Set();
  let names = {}; // NIP -> name

  async function catalogue() {
    const wanted = new URLSearchParams(location.search).get("session") || select.value;
    const data = await Bkm.api("/sessions");
    const open = data.items.filter((s) => s.status === "scheduled");
    Bkm.options(select, open.map((s) => [s.session_id,
      `${s.title} · ${Bkm.date(s.start_date)} · ${t("enroll.seats_left", { n: s.seats_left })}`]), { blank: t("enroll.pick_session") });
    if (open.some((s) => s.session_id === wanted)) select.value = wanted;
    return !wanted || select.value === wanted;
  }

  /** A session just scheduled reaches this catalogue through Kafka: wait for it a little. */
  async function awaitCatalogue() {
    for (let i = 0; i < 60 && !(await catalogue()); i++) {
      $("#roster").innerHTML = `<p class="muted" role="status">${t("enroll.waiting_catalogue")}</p>`;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async function staff() {
    const data = await Bkm.api("/ui/api/people");
    names = Object.fromEntries(data.items.map((p) => [p.nip, p.name]));
    $("#staff-list").innerHTML = data.items.map((p) => `<option value="${esc(p.nip)}">${esc(p.name)} · ${esc(p.unit)}</option>`).join("");
  }

  async function roster() {
    const where = $("#roster");
    if (!select.value) { where.innerHTML = `<p class="muted">${t("enroll.pick_session")}</p>`; return; }
    try {
      const data = await Bkm.api(`/sessions/${encodeURIComponent(select.value)}/roster`);
      const s = data.session;
      const reasonSelect = (id, name) => `<select id="reason-${id}" aria-label="${esc(t("field.reason"))}: ${esc(name)}">${["busy", "budget", "illness", "other"].map((r) => `<option value="${r}">${t("reason." + r)}</option>`).join("")}</select>
        <button type="button" class="secondary small" data-cancel="${id}" aria-label="${esc(t("enroll.cancel"))}: ${esc(name)}">${t("enroll.cancel")}</button>`;
      const row = (p, waiting) => `<tr data-enrollment="${esc(p.enrollment_id)}"${promotedIds.has(p.enrollment_id) ? ' class="flash"' : ""}>
        ${waiting ? `<td class="num">${p.position}</td>` : ""}<td>${esc(p.name || p.nip)}${promotedIds.has(p.enrollment_id) ? ` <span class="badge ok">${t("enroll.promoted_badge")}</span>` : ""}</td>
        <td>${esc(p.unit)}</td><td>${t("nominated." + p.nominated_by)}</td>
        <td><form class="cancel" data-write>${reasonSelect(p.enrollment_id, p.name || p.nip)}</form></td></tr>`;
      where.innerHTML = `<dl class="kpis">
          <div><dt>${t("enroll.capacity")}</dt><dd>${s.capacity}</dd></div>
          <div><dt>${t("enroll.enrolled")}</dt><dd id="count-enrolled">${s.enrolled}</dd></div>
          <div><dt>${t("enroll.waitlisted")}</dt><dd id="count-waitlisted">${s.waitlisted}</dd></div>
          <div><dt>${t("enroll.seats")}</dt><dd>${s.seats_left}</dd></div></dl>
        <h3>${t("enroll.enrolled")}</h3>
        <div class="table-wrap"><table id="enrolled"><thead><tr><th scope="col">${t("field.name")}</th><th scope="col">${t("field.unit")}</th>
          <th scope="col">${t("field.nominated_by")}</th><th scope="col">${t("enroll.cancel")}</th></tr></thead>
          <tbody>${data.enrolled.map((p) => row(p, false)).join("") || `<tr><td colspan="4" class="muted">${t("common.none")}</td></tr>`}</tbody></table></div>
        <h3>${t("enroll.waitlist")}</h3>
        <div class="table-wrap"><table id="waitlist"><thead><tr><th scope="col" class="num">${t("enroll.position")}</th><th scope="col">${t("field.name")}</th>
          <th scope="col">${t("field.unit")}</th><th scope="col">${t("field.nominated_by")}</th><th scope="col">${t("enroll.cancel")}</th></tr></thead>
          <tbody>${data.waitlist.map((p) => row(p, true)).join("") || `<tr><td colspan="5" class="muted">${t("common.none")}</td></tr>`}</tbody></table></div>`;
      if (Bkm.isViewer()) where.querySelectorAll("select, button").forEach((el) => { el.disabled = true; });
      where.querySelectorAll("[data-cancel]").forEach((button) => button.addEventListener("click", () => cancel(button.dataset.cancel, data)));
    } catch (err) { Bkm.loadFailed(where, err); }
  }

  async function cancel(enrollmentId, data) {
    const reason = $(`#reason-${CSS.escape(enrollmentId)}`).value;
    try {
      const result = await Bkm.api(`/enrollments/${encodeURIComponent(enrollmentId)}/cancel`, { method: "POST", body: { reason } });
      promotedIds = new Set(result.promoted);
      const everyone = [...data.enrolled, ...data.waitlist];
      const names = result.promoted.map((id) => everyone.find((p) => p.enrollment_id === id)?.name || id);
      const gone = everyone.find((p) => p.enrollment_id === enrollmentId);
      Bkm.success(form, t("enroll.cancelled", { name: gone?.name || "" }) +
        (names.length ? " " + t("enroll.promoted", { names: names.join(", ") }) : ""));
      await catalogue();
      await roster();
    } catch (err) { Bkm.showError(form, err); }
  }

  Bkm.onSubmit(form, async () => {
    const result = await Bkm.api("/enrollments", { method: "POST", body: Bkm.values(form) });
    promotedIds = new Set();
    const person = names[result.nip] || result.nip;
    Bkm.success(form, result.status === "waitlisted"
      ? t("enroll.waitlisted_msg", { name: person, position: result.waitlist_position })
      : t("enroll.enrolled_msg", { name: person }));
    $("#nip").value = "";
    await catalogue();
    await roster();
  });

  select.addEventListener("change", () => { promotedIds = new Set(); roster(); });
  try { await Promise.all([awaitCatalogue(), staff()]); } catch (err) { Bkm.showError(form, err); }
  roster();
});
