/* Staff register: CSV import with its per-row report, one person at a time, the register list. */
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const { t, $, esc } = Bkm;
  await Bkm.start({ page: "staff" });
  Bkm.options($("#position_type"), ["structural", "functional", "general"].map((p) => [p, t("position." + p)]));
  let offset = 0;
  const PAGE = 50;

  async function list() {
    const where = $("#staff-table");
    const unit = $("#filter-unit").value.trim();
    try {
      const q = new URLSearchParams({ limit: PAGE, offset, ...(unit ? { unit } : {}) });
      const data = await Bkm.api("/staff?" + q);
      where.innerHTML = `<p class="muted">${t("staff.count", { total: Bkm.num(data.total, 0) })}</p>
        <table><thead><tr><th scope="col">${t("field.nip")}</th><th scope="col">${t("field.name")}</th>
        <th scope="col">${t("field.unit")}</th><th scope="col">${t("field.position_type")}</th>
        <th scope="col">${t("field.rank_group")}</th></tr></thead><tbody>
        ${data.items.map((m) => `<tr><td>${esc(m.nip)}</td><td>${esc(m.name)}</td><td>${esc(m.unit)}</td>
          <td>${esc(t("position." + m.position_type))}</td><td>${esc(m.rank_group)}</td></tr>`).join("")}
        </tbody></table>
        <div class="actions">${offset > 0 ? `<button class="secondary" id="prev" type="button">${t("action.prev")}</button>` : ""}
        ${offset + PAGE < data.total ? `<button class="secondary" id="next" type="button">${t("action.next")}</button>` : ""}</div>`;
      where.querySelector("#prev")?.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); list(); });
      where.querySelector("#next")?.addEventListener("click", () => { offset += PAGE; list(); });
    } catch (err) { Bkm.loadFailed(where, err); }
  }

  $("#filter").addEventListener("submit", (e) => { e.preventDefault(); offset = 0; list(); });

  Bkm.onSubmit($("#import-form"), async (data) => {
    const file = $("#file").files[0];
    if (!file) throw new Bkm.ApiError(400, { error: "invalid", errors: [{ field: "file", reason: t("staff.choose_file") }] });
    const form = new FormData();
    form.append("file", file);
    let report = await Bkm.api("/staff/import", { method: "POST", form });
    // A large file is written by a job: follow its progress until it ends.
    while (report.status === "running") {
      $("#import-report").textContent = t("staff.import_progress", {
        done: report.done, rows: report.rows, rejected: report.rejected });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      report = await Bkm.api(`/staff/imports/${report.job_id}`);
    }
    if (report.status === "failed") throw new Bkm.ApiError(503, { error: "unavailable", errors: [{ field: "file", reason: report.failure }] });
    Bkm.success($("#import-form"), t("staff.imported", {
      created: report.created, updated: report.updated, unchanged: report.unchanged, rejected: report.rejected }));
    $("#import-report").innerHTML = report.errors.length ? `<table id="row-errors"><caption>${t("staff.row_errors")}</caption>
      <thead><tr><th scope="col" class="num">${t("staff.line")}</th><th scope="col">${t("staff.column")}</th><th scope="col">${t("staff.problem")}</th></tr></thead>
      <tbody>${report.errors.map((e) => `<tr><td class="num">${e.line}</td><td>${esc(Bkm.has("field." + e.field) ? t("field." + e.field) : e.field)}</td>
      <td>${esc(Bkm.reason(e.reason))}</td></tr>`).join("")}</tbody></table>` : "";
    list();
  });

  Bkm.onSubmit($("#person-form"), async () => {
    const result = await Bkm.api("/staff", { method: "POST", body: Bkm.values($("#person-form")) });
    Bkm.success($("#person-form"), t("staff.saved_" + result.outcome, { name: result.staff.name }));
    list();
  });

  list();
});
