/* One session: attendance per day, pre/post tests, completion with JP and certificates. */
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const { t, $, esc } = Bkm;
  await Bkm.start({ page: "session" });
  const id = new URLSearchParams(location.search).get("id") || "";
  const path = `/sessions/${encodeURIComponent(id)}`;
  let session = null;
  let names = {};

  /** Names live only in the enrollment service: ask it (same host, peer port). */
  async function loadNames() {
    try {
      const people = await Bkm.api("/ui/api/people", { service: "enrollment" });
      names = Object.fromEntries(people.items.map((p) => [p.person_id, p]));
    } catch (err) { names = {}; }
  }
  const who = (pid) => names[pid] ? esc(names[pid].name) : `<span class="muted">${esc(pid.slice(0, 8))}…</span>`;
  const byName = (a, b) => (names[a]?.name || a).localeCompare(names[b]?.name || b);

  function info() {
    const s = session;
    $("#session-title").textContent = s.title;
    $("#session-info").innerHTML = `<dl class="kpis">
      <div><dt>${t("sessions.status")}</dt><dd id="status">${t("status." + s.status)}</dd></div>
      <div><dt>${t("sessions.dates")}</dt><dd style="font-size:1rem">${Bkm.date(s.start_date)}${s.end_date !== s.start_date ? " – " + Bkm.date(s.end_date) : ""}</dd></div>
      <div><dt>${t("field.jp")}</dt><dd>${s.jp}</dd></div>
      <div><dt>${t("sessions.participants")}</dt><dd>${s.participants.length} / ${s.capacity}</dd></div>
      <div><dt>${t("field.method")}</dt><dd style="font-size:1rem">${t("method." + s.method)} · ${t("provider." + s.provider)}</dd></div></dl>
      ${s.status === "cancelled" ? `<p class="alert alert-error">${t("session.was_cancelled", { reason: esc(s.cancel_reason) })}</p>` : ""}
      ${s.status === "scheduled" && !s.participants.length ? `<p class="alert alert-info" role="status">${t("session.no_participants")}
        <a href="${Bkm.link("enrollment", "/ui/enrollment?session=" + encodeURIComponent(s.session_id))}">${t("sessions.enroll")}</a></p>` : ""}`;
    const rule = s.completion_rule;
    $("#rule").textContent = t("session.rule", { attendance: rule.min_attendance_percent, post: rule.min_post_test });
  }

  function attendance() {
    const day = Number($("#day").value || 1);
    const marks = session.attendance[String(day)] || {};
    const people = [...session.participants].sort(byName);
    $("#attendance-sheet").innerHTML = people.length ? `<table><thead><tr><th scope="col">${t("field.name")}</th><th scope="col">${t("session.present")}</th></tr></thead><tbody>
      ${people.map((pid) => `<tr><td><label for="present-${pid}">${who(pid)}</label></td>
        <td><input type="checkbox" id="present-${pid}" data-person="${pid}" ${marks[pid] !== false ? "checked" : ""}>
        ${pid in marks ? `<small class="muted">${marks[pid] ? t("session.recorded_present") : t("session.recorded_absent")}</small>` : ""}</td></tr>`).join("")}</tbody></table>`
      : `<p class="muted">${t("session.no_participants")}</p>`;
  }

  function tests() {
    const people = [...session.participants].sort(byName);
    $("#tests-sheet").innerHTML = people.length ? `<table><thead><tr><th scope="col">${t("field.name")}</th><th scope="col">${t("session.pre")}</th><th scope="col">${t("session.post")}</th></tr></thead><tbody>
      ${people.map((pid) => {
        const sc = session.scores[pid] || {};
        const cell = (kind) => `<input type="number" min="0" max="100" step="0.5" inputmode="decimal" name="${kind}-${pid}" data-kind="${kind}" data-person="${pid}"
          aria-label="${t("session." + kind)}: ${esc(names[pid]?.name || pid)}" value="${sc[kind] ?? ""}" style="width:6rem">`;
        return `<tr><td>${who(pid)}</td><td>${cell("pre")}</td><td>${cell("post")}</td></tr>`;
      }).join("")}</tbody></table>` : `<p class="muted">${t("session.no_participants")}</p>`;
  }

  function outcomes() {
    const done = session.completion;
    if (!done) { $("#outcomes").innerHTML = ""; return; }
    $("#outcomes").innerHTML = `<p class="alert alert-ok" role="status">${t("session.completed_summary", {
        completed: done.completed, participants: done.participants, date: Bkm.date(done.completed_on), cost: Bkm.rupiah(done.actual_cost) })}</p>
      <table id="outcome-table"><thead><tr><th scope="col">${t("field.name")}</th><th scope="col" class="num">${t("session.days_present")}</th>
      <th scope="col" class="num">${t("session.post")}</th><th scope="col">${t("session.result")}</th><th scope="col" class="num">${t("session.jp_credited")}</th>
      <th scope="col">${t("session.certificate")}</th></tr></thead><tbody>
      ${done.outcomes.map((o) => `<tr><td>${who(o.person_id)}</td><td class="num">${o.days_present} (${Bkm.num(o.attendance_percent)}%)</td>
        <td class="num">${o.post_test == null ? "–" : Bkm.num(o.post_test)}</td>
        <td>${o.completed ? `<span class="badge ok">${t("session.passed")}</span>` : `<span class="badge bad">${t("session.not_passed")}</span> <small>${esc(Bkm.reason(o.reason || ""))}</small>`}</td>
        <td class="num">${o.jp}</td><td>${o.certificate ? `<code>${esc(o.certificate)}</code>` : "–"}</td></tr>`).join("")}</tbody></table>`;
  }

  async function load() {
    try {
      session = await Bkm.api(path);
    } catch (err) { Bkm.loadFailed($("#session-info"), err); return; }
    const day = $("#day").value;
    Bkm.options($("#day"), [...Array(session.days)].map((_, i) => [i + 1, t("session.day_n", { n: i + 1 })]));
    if (day) $("#day").value = day;
    info(); attendance(); tests(); outcomes();
    const closed = session.status !== "scheduled";
    for (const f of ["#attendance-form", "#tests-form", "#complete-form", "#cancel-form"]) {
      $(f).querySelectorAll("input, select, button").forEach((el) => { el.disabled = closed || Bkm.isViewer(); });
    }
    if (!$("#completed_on").value) $("#completed_on").value = Bkm.today() > session.end_date ? session.end_date : Bkm.today();
  }

  $("#day").addEventListener("change", attendance);

  Bkm.onSubmit($("#attendance-form"), async () => {
    const boxes = [...$("#attendance-sheet").querySelectorAll("input[data-person]")];
    const body = { day: Number($("#day").value), present: boxes.filter((b) => b.checked).map((b) => b.dataset.person),
      absent: boxes.filter((b) => !b.checked).map((b) => b.dataset.person) };
    await Bkm.api(path + "/attendance", { method: "POST", body });
    await load();
    Bkm.success($("#attendance-form"), t("session.attendance_saved", { day: body.day, present: body.present.length, absent: body.absent.length }));
  });

  Bkm.onSubmit($("#tests-form"), async () => {
    const inputs = [...$("#tests-sheet").querySelectorAll("input[data-person]")];
    let saved = 0;
    for (const kind of ["pre", "post"]) {
      const scores = {};
      for (const input of inputs.filter((i) => i.dataset.kind === kind && i.value.trim() !== "")) {
        scores[input.dataset.person] = Number(input.value.replace(",", "."));
      }
      if (!Object.keys(scores).length) continue;
      await Bkm.api(path + "/assessments", { method: "POST", body: { kind, scores } });
      saved += Object.keys(scores).length;
    }
    await load();
    Bkm.success($("#tests-form"), t("session.tests_saved", { n: saved }));
  });

  Bkm.onSubmit($("#complete-form"), async () => {
    await Bkm.api(path + "/complete", { method: "POST", body: Bkm.values($("#complete-form")) });
    await load();
    Bkm.success($("#complete-form"), t("session.completed"));
  });

  Bkm.onSubmit($("#cancel-form"), async () => {
    await Bkm.api(path + "/cancel", { method: "POST", body: Bkm.values($("#cancel-form")) });
    await load();
  });

  await loadNames();
  await load();
  // The roster arrives from the enrollment service through Kafka: look again while it is empty.
  for (let i = 0; i < 60 && session && session.status === "scheduled" && !session.participants.length; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    await load();
  }
});
