/* Follow-up weeks after a training (evaluation level 3): does the person apply the skills? */
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const { t, $ } = Bkm;
  await Bkm.start({ page: "followup" });
  const form = $("#followup-form");
  let names = {};
  try {
    const people = await Bkm.api("/ui/api/people", { service: "enrollment" });
    names = Object.fromEntries(people.items.map((p) => [p.person_id, p.name]));
  } catch { /* without names the pseudonymous ids still work */ }
  async function participants() {
    const id = $("#session").value;
    if (!id) { Bkm.options($("#person_id"), [], { blank: t("common.choose") }); return; }
    const s = await Bkm.api(`/sessions/${encodeURIComponent(id)}`);
    const done = (s.completion?.outcomes || []).filter((o) => o.completed).map((o) => o.person_id);
    Bkm.options($("#person_id"), done.map((p) => [p, names[p] || p]), { blank: t("common.choose") });
  }
  try {
    const sessions = await Bkm.api("/sessions?status=completed");
    Bkm.options($("#session"), sessions.map((s) => [s.session_id, `${s.title} · ${Bkm.date(s.end_date)}`]), { blank: t("common.choose") });
  } catch (err) { Bkm.showError(form, err); }
  $("#session").addEventListener("change", () => participants().catch((err) => Bkm.showError(form, err)));
  if (Bkm.isViewer()) form.querySelectorAll("input, select, button").forEach((el) => { el.disabled = true; });

  Bkm.onSubmit(form, async () => {
    const { session, ...body } = Bkm.values(form);
    if (!session) throw new Bkm.ApiError(400, { error: "invalid", errors: [{ field: "session", reason: t("common.required") }] });
    await Bkm.api(`/sessions/${encodeURIComponent(session)}/followups`, { method: "POST", body });
    Bkm.success(form, t("common.saved"));
  });
});
