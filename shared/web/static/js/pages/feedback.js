/* Participant feedback (evaluation level 1), made for a phone: four 1-5 scores and a comment. */
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const { t, $ } = Bkm;
  await Bkm.start({ page: "feedback" });
  const form = $("#feedback-form");
  $("#scores").innerHTML = ["content", "speaker", "method", "relevance"].map((k) => `<fieldset class="choices field">
    <legend>${t("feedback." + k)}</legend>${[1, 2, 3, 4, 5].map((n) =>
      `<label><input type="radio" name="${k}" value="${n}" data-type="int" required>${n}</label>`).join("")}</fieldset>`).join("");
  try {
    const sessions = (await Bkm.api("/sessions")).filter((s) => s.status !== "cancelled");
    Bkm.options($("#session"), sessions.map((s) => [s.session_id, `${s.title} · ${Bkm.date(s.start_date)}`]), { blank: t("common.choose") });
    const wanted = new URLSearchParams(location.search).get("session");
    if (wanted) $("#session").value = wanted;
  } catch (err) { Bkm.showError(form, err); }
  if (Bkm.isViewer()) form.querySelectorAll("input, select, textarea, button").forEach((el) => { el.disabled = true; });

  Bkm.onSubmit(form, async () => {
    const { session, ...body } = Bkm.values(form);
    if (!session) throw new Bkm.ApiError(400, { error: "invalid", errors: [{ field: "session", reason: t("common.required") }] });
    await Bkm.api(`/sessions/${encodeURIComponent(session)}/feedback`, { method: "POST", body });
    form.reset();
    $("#session").value = session;
    Bkm.success(form, t("feedback.thanks"));
  });
});
