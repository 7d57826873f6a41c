/* Training needs from surveys and forums: they decide next year's programme. */
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const { t, $, esc } = Bkm;
  await Bkm.start({ page: "needs" });
  Bkm.options($("#competency_type"), ["technical", "managerial", "socio-cultural"].map((c) => [c, t("ctype." + c)]));
  Bkm.options($("#priority"), ["high", "medium", "low"].map((p) => [p, t("priority." + p)]));
  Bkm.options($("#source"), ["survey", "forum"].map((s) => [s, t("source." + s)]));
  $("#plan_year").value = new Date().getFullYear() + 1;

  async function list() {
    const where = $("#needs");
    try {
      const data = await Bkm.api("/needs");
      where.innerHTML = `<table><thead><tr><th scope="col">${t("field.plan_year")}</th><th scope="col">${t("field.competency_type")}</th>
        <th scope="col">${t("field.competency")}</th><th scope="col">${t("field.unit")}</th><th scope="col" class="num">${t("field.staff_count")}</th>
        <th scope="col">${t("field.priority")}</th><th scope="col">${t("field.source")}</th></tr></thead><tbody>
        ${data.items.map((n) => `<tr><td>${n.plan_year}</td><td>${t("ctype." + n.competency_type)}</td><td>${esc(n.competency)}</td>
          <td>${esc(n.unit)}</td><td class="num">${Bkm.num(n.staff_count, 0)}</td><td>${t("priority." + n.priority)}</td><td>${t("source." + n.source)}</td></tr>`).join("")
          || `<tr><td colspan="7" class="muted">${t("common.none")}</td></tr>`}</tbody></table>`;
    } catch (err) { Bkm.loadFailed(where, err); }
  }

  Bkm.onSubmit($("#need-form"), async () => {
    await Bkm.api("/needs", { method: "POST", body: Bkm.values($("#need-form")) });
    Bkm.success($("#need-form"), t("common.saved"));
    list();
  });
  list();
});
