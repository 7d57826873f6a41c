/* IKM surveys (PermenPANRB 14/2017): nine element means 1-4; the service computes IKM and band. */
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const { t, $, esc } = Bkm;
  await Bkm.start({ page: "surveys" });
  const form = $("#survey-form");
  $("#elements").innerHTML = [...Array(9)].map((_, i) => `<div class="field">
    <label for="element-${i}">${i + 1}. ${t("ikm.u" + (i + 1))}</label>
    <input id="element-${i}" name="element_means.${i}" type="number" min="1" max="4" step="0.01" inputmode="decimal" required></div>`).join("");
  if (Bkm.isViewer()) form.querySelectorAll("input, button").forEach((el) => { el.disabled = true; });

  async function list() {
    const where = $("#survey-list");
    try {
      const items = await Bkm.api("/surveys");
      where.innerHTML = `<table><thead><tr><th scope="col">${t("field.unit")}</th><th scope="col">${t("field.period")}</th>
        <th scope="col" class="num">${t("field.respondents")}</th><th scope="col" class="num">IKM</th><th scope="col">${t("ikm.grade")}</th></tr></thead><tbody>
        ${items.map((s) => `<tr><td>${esc(s.unit)}</td><td>${Bkm.month(s.period)}</td><td class="num">${Bkm.num(s.respondents, 0)}</td>
          <td class="num">${Bkm.num(s.ikm, 2)}</td><td>${esc(s.grade)} · ${esc(s.label)}</td></tr>`).join("")
          || `<tr><td colspan="5" class="muted">${t("common.none")}</td></tr>`}</tbody></table>`;
    } catch (err) { Bkm.loadFailed(where, err); }
  }

  Bkm.onSubmit(form, async () => {
    const v = Bkm.values(form);
    const body = { unit: v.unit, period: v.period, respondents: v.respondents,
      element_means: [...Array(9)].map((_, i) => Number(String($(`#element-${i}`).value).replace(",", "."))) };
    const record = await Bkm.api("/surveys", { method: "POST", body });
    Bkm.success(form, t("ikm.saved", { ikm: Bkm.num(record.ikm, 2), grade: record.grade, label: record.label }));
    list();
  });
  list();
});
