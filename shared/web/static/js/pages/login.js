/* Sign-in: keep the city token in a cookie (shared by both services' ports) and check it. */
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  await Bkm.start({ page: "signin", signIn: false });
  const params = new URLSearchParams(location.search);
  const why = params.get("why");
  if (why && Bkm.has(why)) { const el = Bkm.$("#why"); el.textContent = Bkm.t(why); el.hidden = false; }
  const form = Bkm.$("#signin");
  Bkm.onSubmit(form, async (data) => {
    const token = String(data.get("token") || "").trim();
    if (!/^bkm\.[a-z][a-z0-9-]+\.(viewer|operator)\.\S+$/.test(token)) {
      throw new Bkm.ApiError(400, { error: "invalid", errors: [{ field: "token", reason: Bkm.t("signin.format") }] });
    }
    Bkm.setCookie("bkm_token", token);
    try {
      await Bkm.api("/ui/api/whoami");
    } catch (err) {
      Bkm.setCookie("bkm_token", "");
      if (err.status === 401 || err.status === 403) {
        throw new Bkm.ApiError(err.status, { error: err.code, errors: [{ field: "token", reason: err.status === 401 ? Bkm.t("signin.rejected") : Bkm.t("signin.other_city") }] });
      }
      throw err;
    }
    const next = params.get("next");
    location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
  });
  Bkm.$("#token").focus();
});
