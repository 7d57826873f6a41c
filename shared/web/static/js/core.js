/* Bangkom pages: language, Indonesian formats, sign-in, API calls and error display.
   Plain browser JavaScript, no build step. Every page calls `Bkm.start({...})` first. */
"use strict";

const Bkm = (() => {
  const LANGS = ["id", "en"];
  let dict = {};
  let reasons = [];
  let who = null;

  // --- cookies: shared by every port of this host, so one sign-in serves both services ---
  function cookie(name) {
    const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
  }
  function setCookie(name, value, days = 30) {
    const age = value ? days * 86400 : 0;
    document.cookie = `${name}=${encodeURIComponent(value)}; Path=/; Max-Age=${age}; SameSite=Strict`;
  }

  // --- language ----------------------------------------------------------------------------
  const lang = () => (LANGS.includes(cookie("bkm_lang")) ? cookie("bkm_lang") : "id");

  function t(key, vars = {}) {
    const text = dict[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? vars[name] : `{${name}}`));
  }
  function has(key) { return key in dict; }

  function translate(root = document) {
    root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    root.querySelectorAll("[data-i18n-attr]").forEach((el) => {
      for (const pair of el.dataset.i18nAttr.split(";")) {
        const [attr, key] = pair.split(":");
        el.setAttribute(attr.trim(), t(key.trim()));
      }
    });
  }

  /** Server reasons are English; the dictionary rewrites the common ones. */
  function reason(text) {
    for (const [pattern, replacement] of reasons) {
      const re = new RegExp(pattern, "i");
      if (re.test(text)) return text.replace(re, replacement);
    }
    return text;
  }

  // --- Indonesian formats ---------------------------------------------------------------------
  const num = (value, digits = 1) => value == null || Number.isNaN(value) ? "–"
    : new Intl.NumberFormat("id-ID", { maximumFractionDigits: digits }).format(value);
  const pct = (ratio, digits = 1) => ratio == null ? "–" : num(ratio * 100, digits) + "%";
  const rupiah = (value) => value == null ? "–"
    : "Rp\u00a0" + new Intl.NumberFormat("id-ID", { maximumFractionDigits: 0 }).format(value);
  function date(iso) {
    if (!iso) return "–";
    const [y, m, d] = String(iso).slice(0, 10).split("-").map(Number);
    return new Intl.DateTimeFormat(lang() === "id" ? "id-ID" : "en-GB",
      { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" })
      .format(new Date(Date.UTC(y, m - 1, d)));
  }
  function month(ym) {
    const [y, m] = ym.split("-").map(Number);
    return new Intl.DateTimeFormat(lang() === "id" ? "id-ID" : "en-GB",
      { month: "long", year: "numeric", timeZone: "UTC" }).format(new Date(Date.UTC(y, m - 1, 1)));
  }
  const today = () => new Date().toLocaleDateString("sv-SE"); // YYYY-MM-DD, local time

  // --- the two services of a city ------------------------------------------------------------
  /** Base URL of `service`: this page's origin, a `?enrollment=`/`?sessions=` override
      (remembered in a cookie), or the local layout where sessions = enrollment port + 1. */
  function base(service) {
    const own = document.body.dataset.service;
    if (!service || service === own) return location.origin;
    const remembered = cookie("bkm_url_" + service);
    if (remembered) return remembered;
    const port = Number(location.port || 80) + (service === "sessions" ? 1 : -1);
    return `${location.protocol}//${location.hostname}:${port}`;
  }
  const link = (service, path) => base(service) + path;

  // --- API --------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body) {
      super(body.message || body.error || String(status));
      this.status = status;
      this.code = body.error || "error";
      this.errors = body.errors || [];
    }
  }

  async function api(path, { method = "GET", body, form, service } = {}) {
    const headers = {};
    const token = cookie("bkm_token");
    if (token) headers.Authorization = "Bearer " + token;
    let payload;
    if (form) payload = form;
    else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
    let response;
    try {
      response = await fetch(base(service) + path, { method, headers, body: payload });
    } catch (e) {
      throw new ApiError(0, { error: "network", message: String(e) });
    }
    const text = await response.text();
    let data = {};
    try { data = text ? JSON.parse(text) : {}; } catch { data = { error: "error", message: text }; }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  /** The message for an API error, in the user's language. */
  function describe(err) {
    const code = err.code === "invalid" ? "invalid_input" : err.code;
    const key = "error." + code;
    let text = has(key) ? t(key) : t("error.other", { status: err.status });
    if (code === "error" || !has(key)) text += err.message ? ` (${err.message})` : "";
    return text;
  }

  /** Show `err` on `form`: each field's reason beside its input, the rest in the form's alert. */
  function showError(form, err) {
    clearErrors(form);
    const loose = [];
    for (const item of err.errors || []) {
      const input = fieldInput(form, item.field);
      const text = reason(item.reason);
      if (!input) { loose.push(`${label(form, item.field)}: ${text}`); continue; }
      const note = document.createElement("p");
      note.className = "field-error";
      note.id = `${input.id || input.name}-error`;
      note.textContent = text;
      const place = input.closest(".field") || input.parentElement;
      place.appendChild(note);
      input.setAttribute("aria-invalid", "true");
      // keep the input's hint described too; clearErrors puts the original back
      if (!input.hasAttribute("data-described")) input.dataset.described = input.getAttribute("aria-describedby") || "";
      input.setAttribute("aria-describedby", `${input.dataset.described} ${note.id}`.trim());
    }
    const box = alertBox(form);
    box.className = "alert alert-error";
    box.textContent = [describe(err), ...loose].join(" ");
    const first = form.querySelector("[aria-invalid=true]");
    (first || box).focus();
  }

  function fieldInput(form, field) {
    if (!field) return null;
    const names = [field, field.split(".")[0]];
    for (const name of names) {
      const el = form.querySelector(`[name="${CSS.escape(name)}"]`);
      if (el) return el;
    }
    return null;
  }
  function label(form, field) {
    const key = "field." + field.split(".")[0];
    return has(key) ? t(key) : field;
  }

  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach((el) => el.remove());
    form.querySelectorAll("[aria-invalid]").forEach((el) => {
      el.removeAttribute("aria-invalid");
      if (el.dataset.described) el.setAttribute("aria-describedby", el.dataset.described);
      else el.removeAttribute("aria-describedby");
      delete el.dataset.described;
    });
    const box = form.querySelector(".alert");
    if (box) { box.textContent = ""; box.className = "alert"; }
  }

  function alertBox(form) {
    let box = form.querySelector(".alert");
    if (!box) {
      box = document.createElement("div");
      box.className = "alert";
      form.prepend(box);
    }
    box.setAttribute("role", "alert");
    box.tabIndex = -1;
    return box;
  }

  function success(form, text) {
    clearErrors(form);
    const box = alertBox(form);
    box.className = "alert alert-ok";
    box.setAttribute("role", "status");
    box.textContent = text;
  }

  // A form is sent by its page script only. One submitted before that script is wired (the
  // dictionary still loading) is held, not sent natively (which would put a token in the URL),
  // and goes out once `onSubmit` is attached.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset.wired) return;
    event.preventDefault();
    form.dataset.pending = "1";
  }, true);

  /** Run `action` on submit; errors land on the form, the submit button waits meanwhile. */
  function onSubmit(form, action) {
    form.dataset.wired = "1";
    if (form.dataset.pending) { delete form.dataset.pending; queueMicrotask(() => form.requestSubmit()); }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("[type=submit]");
      if (button) button.disabled = true;
      form.setAttribute("aria-busy", "true");
      try {
        clearErrors(form);
        await action(new FormData(form));
      } catch (err) {
        if (err instanceof ApiError) showError(form, err); else { console.error(err); showError(form, new ApiError(0, { error: "error", message: String(err) })); }
      } finally {
        form.removeAttribute("aria-busy");
        if (button && !form.disabled) button.disabled = isViewer();
      }
    });
  }

  /** Form data as an object: empty inputs left out, `data-type="int|float"` inputs as numbers. */
  function values(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled || el.type === "file" || el.type === "submit") continue;
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) continue;
      const raw = el.value.trim();
      if (raw === "") continue;
      const kind = el.dataset.type;
      out[el.name] = kind === "int" ? parseInt(raw, 10) : kind === "float" ? parseFloat(raw.replace(",", "."))
        : kind === "bool" ? raw === "true" : raw;
    }
    return out;
  }

  // --- page frame ------------------------------------------------------------------------------
  const CITY_NAV = [
    ["dashboard", "sessions", "/ui/dashboard"], ["staff", "enrollment", "/ui/staff"],
    ["sessions", "sessions", "/ui/sessions"], ["enrollment", "enrollment", "/ui/enrollment"],
    ["feedback", "sessions", "/ui/feedback"], ["followup", "sessions", "/ui/followup"],
    ["surveys", "sessions", "/ui/surveys"], ["needs", "enrollment", "/ui/needs"],
  ];

  function frame(page, { national = false, nav: withNav = true } = {}) {
    const header = document.querySelector("header.site");
    // The sign-in page is served by both city services and cannot tell which port is which.
    const nav = national || !withNav ? "" : `<nav aria-label="${t("nav.label")}"><ul>${CITY_NAV.map(([name, svc, path]) =>
      `<li><a href="${link(svc, path)}"${name === page ? ' aria-current="page"' : ""}>${t("nav." + name)}</a></li>`).join("")}</ul></nav>`;
    const other = lang() === "id" ? "en" : "id";
    header.innerHTML = `
      <a class="skip" href="#main">${t("nav.skip")}</a>
      <div class="bar">
        <span class="brand">Bangkom <small>${national ? t("app.national") : (who ? t("app.city", { city: cityName(who.city) }) : t("app.console"))}</small></span>
        <span class="tools">
          ${who ? `<span class="who">${t("role." + who.role)}</span> <button type="button" class="link" id="sign-out">${t("nav.signout")}</button>` : ""}
          <button type="button" class="lang" id="lang-switch" lang="${other}" aria-label="${t("lang.switch_label")}">${t("lang.switch")}</button>
        </span>
      </div>${nav}`;
    header.querySelector("#lang-switch").addEventListener("click", () => {
      setCookie("bkm_lang", other, 365);
      location.reload();
    });
    // on a phone the menu scrolls sideways: keep the current page in view
    header.querySelector("[aria-current=page]")?.scrollIntoView({ inline: "center", block: "nearest" });
    const out = header.querySelector("#sign-out");
    if (out) out.addEventListener("click", () => { setCookie("bkm_token", ""); location.href = "/ui/login"; });
  }

  const cityName = (c) => c.split("-").map((w) => w[0].toUpperCase() + w.slice(1)).join(" ");
  const isViewer = () => who !== null && who.role !== "operator";

  /** A viewer sees every write form disabled, with the reason said once at the top. */
  function gateWrites() {
    if (!isViewer()) return;
    document.querySelectorAll("form[data-write]").forEach((form) => {
      form.querySelectorAll("input, select, textarea, button").forEach((el) => { el.disabled = true; });
    });
    const note = document.createElement("p");
    note.className = "alert alert-info";
    note.id = "viewer-note";
    note.textContent = t("role.viewer_note");
    document.querySelector("main h1").after(note);
  }

  async function loadDictionary() {
    const response = await fetch(`/ui/static/i18n/${lang()}.json`);
    const data = await response.json();
    reasons = data._reasons || [];
    delete data._reasons;
    dict = data;
    document.documentElement.lang = lang();
  }

  /** `?enrollment=URL&sessions=URL` on any page: remember where the city's services are. */
  function rememberPeers() {
    const query = new URLSearchParams(location.search);
    for (const service of ["enrollment", "sessions"]) {
      const url = (query.get(service) || "").replace(/\/$/, "");
      if (/^https?:\/\/[^\s/?#]+$/.test(url)) setCookie("bkm_url_" + service, url);
    }
  }

  /** Load the language, check the sign-in (city pages), draw the frame. */
  async function start({ page, signIn = true, national = false }) {
    rememberPeers();
    await loadDictionary();
    if (signIn) {
      if (!cookie("bkm_token")) return toLogin("signin.needed");
      try {
        who = await api("/ui/api/whoami");
      } catch (err) {
        if (err.status === 401 || err.status === 403) return toLogin(err.status === 401 ? "signin.rejected" : "signin.other_city");
        throw err;
      }
    }
    translate();
    frame(page, { national, nav: signIn });
    gateWrites();
    document.title = `${t("title." + page)} · Bangkom`;
    return who;
  }

  function toLogin(why) {
    const next = encodeURIComponent(location.pathname + location.search);
    location.href = `/ui/login?next=${next}&why=${why}`;
    return new Promise(() => {}); // the page is leaving
  }

  // --- small DOM helpers ----------------------------------------------------------------------
  const $ = (sel, root = document) => root.querySelector(sel);
  function esc(value) {
    return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }
  function options(select, items, { blank } = {}) {
    select.innerHTML = (blank ? `<option value="">${esc(blank)}</option>` : "") +
      items.map(([value, text]) => `<option value="${esc(value)}">${esc(text)}</option>`).join("");
  }
  function loadFailed(where, err) {
    where.innerHTML = `<p class="alert alert-error" role="alert">${esc(describe(err))}</p>`;
  }

  return {
    start, t, has, translate, reason, num, pct, rupiah, date, month, today, base, link, api,
    ApiError, describe, showError, clearErrors, success, onSubmit, values, cookie, setCookie,
    isViewer, cityName, $, esc, options, loadFailed, lang, who: () => who,
  };
})();
