// The status page: reads GET /api/v1/overview with the operator's token and draws it.
// Every text from the service is untrusted (policy names, subjects, reasons): it goes
// into the page as text nodes only (el() below), never as HTML.
"use strict";
(() => {
  const TOKEN_KEY = "bastion.token";
  const params = new URLSearchParams(window.location.search);
  const REFRESH_S = Math.max(1, Number(params.get("refresh")) || 5);
  const $ = (id) => document.getElementById(id);
  let timer = null;
  let editing = false; // an inline form is open: the timer does not redraw under it
  let silencesAvailable = null; // null: not asked yet; false: this service has none

  // -- small helpers -------------------------------------------------------------------

  // Control characters and the invisible direction marks (which can make "gen-01" read
  // as another name) are shown as their code point, never acted upon.
  const HIDDEN = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
  const visible = (value) =>
    String(value).replace(HIDDEN, (c) => "⟨U+" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0") + "⟩");

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = visible(value);
      else if (name === "onclick") node.addEventListener("click", value);
      else if (name === "onsubmit") node.addEventListener("submit", value);
      else node.setAttribute(name, value === true ? "" : visible(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(visible(child)));
    }
    return node;
  }

  function rows(tableId, items, draw, emptyText) {
    const body = document.querySelector(`[data-testid="${tableId}"] tbody`);
    const columns = body.parentElement.querySelectorAll("thead th").length;
    body.replaceChildren();
    if (!items.length) {
      body.append(el("tr", { class: "empty-row" }, el("td", { colspan: columns, class: "empty", text: emptyText })));
      return;
    }
    for (const item of items) body.append(...[].concat(draw(item)));
  }

  const short = (version) => (version ? String(version).slice(0, 19) : "");
  const time = (iso) => (iso ? String(iso).replace("T", " ").replace(/\.\d+/, "").replace("+00:00", "Z") : "—");
  // A long decimal as a person reads it (2 places); the exact value is in the title.
  const shown = (value) => (/^-?\d+\.\d{3,}$/.test(String(value)) ? Number(value).toFixed(2) : String(value));
  const shellQuote = (text) => "'" + String(text).replace(/'/g, "'\\''") + "'";

  function token() {
    return window.sessionStorage.getItem(TOKEN_KEY) || "";
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (token()) headers.Authorization = "Bearer " + token();
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    try {
      data = await response.json();
    } catch (_error) {
      data = null;
    }
    return { status: response.status, data };
  }

  function say(text, isError) {
    const message = $("message");
    message.textContent = visible(text || "");
    message.className = isError ? "error" : "";
  }

  // -- signing in ----------------------------------------------------------------------

  function showLogin(reason) {
    $("panel").hidden = true;
    $("login").hidden = false;
    $("forget").hidden = !token();
    $("who").textContent = "";
    $("summary").textContent = "";
    $("login-error").textContent = visible(reason || "");
    $("token").focus();
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    window.sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    refresh(true);
  });

  $("forget").addEventListener("click", () => {
    window.sessionStorage.removeItem(TOKEN_KEY);
    showLogin("");
  });

  // -- reading and drawing -------------------------------------------------------------

  const AUTH_REQUIRED = (document.querySelector('meta[name="bastion-auth"]') || {}).content === "required";

  async function refresh(force) {
    if (editing && !force) return;
    if (AUTH_REQUIRED && !token()) {
      if ($("login").hidden) showLogin("");
      return; // nothing to ask the API without a token: it would only refuse (and audit)
    }
    let answer;
    try {
      answer = await api("GET", "/api/v1/overview");
    } catch (error) {
      say(`the service does not answer (${error}); what is shown is from the last successful read`, true);
      return;
    }
    if (answer.status === 401 || answer.status === 403) {
      const why = answer.data && answer.data.error ? answer.data.error : "HTTP " + answer.status;
      const had = token();
      if (had) window.sessionStorage.removeItem(TOKEN_KEY);
      showLogin(had ? "token refused: " + why : "");
      return;
    }
    if (answer.status !== 200 || !answer.data) {
      const why = answer.data && answer.data.error ? ": " + answer.data.error : "";
      say(`GET /api/v1/overview answered HTTP ${answer.status}${why}; what is shown is from the last successful read`, true);
      return;
    }
    $("login").hidden = true;
    $("panel").hidden = false;
    $("forget").hidden = !token();
    editing = false;
    await draw(answer.data);
  }

  async function draw(data) {
    const you = data.you;
    $("who").textContent = visible(you.identified ? `${you.name} (${you.role})` : "local (no --auth)");
    const tripped = data.breakers.length;
    const halted = data.accounts.filter((a) => a.trading_state !== "ACTIVE").length;
    $("summary").replaceChildren(
      el("span", { class: data.ready.ready ? "ready-yes" : "ready-no", text: data.ready.ready ? "ready" : "NOT READY" }),
      ` · ${data.adapter} · policies ${short(data.policy_version)} · ${tripped} breaker(s) not armed · ${halted} account(s) not ACTIVE`,
    );
    const notes = [];
    if (!data.ready.ready) notes.push("not ready: " + data.ready.reasons.join("; "));
    if (data.last_poll && data.last_poll.error) notes.push("last poll failed: " + data.last_poll.error);
    say(notes.join(" — "), notes.length > 0);
    drawAccounts(data);
    drawBreakers(data);
    drawEscalations(data);
    drawDecisions(data);
    drawReloads(data);
    await drawAlertsAndSilences(data);
    const cycle = data.cycle ? `cycle ${data.cycle.number} at ${time(data.cycle.at)} (market time)` : "no cycle yet";
    $("updated").textContent = `${cycle}; page read at ${new Date().toISOString().replace(/\.\d+/, "")}; refreshed every ${REFRESH_S} s`;
  }

  function drawAccounts(data) {
    rows("accounts", data.accounts, (account) =>
      el("tr", { "data-account": account.id },
        el("td", { class: "mono", text: account.id }),
        el("td", { class: "state-" + account.trading_state, text: account.trading_state }),
        el("td", { class: "num", text: account.equity_usd ?? "—" }),
        el("td", { class: "num", text: account.breakers_not_armed })),
    "no accounts in the last snapshot");
  }

  function drawBreakers(data) {
    const may = data.you.may.reset;
    rows("breakers", data.breakers, (breaker) => {
      const exact = breaker.values
        ? Object.entries(breaker.values).map(([name, value]) => `${name} = ${value}`).join(", ")
        : null;
      const values = breaker.values
        ? Object.entries(breaker.values).map(([name, value]) => `${name} = ${shown(value)}`).join(", ")
        : "— (tripped before this process started; see the audit trail)";
      let cooldown = breaker.cooldown_s ? `${breaker.cooldown_s} s` : "—";
      if (breaker.awaiting_manual_reset) cooldown += "; awaiting a manual reset";
      else if (breaker.until) cooldown += `; until ${time(breaker.until)}`;
      if (breaker.reset) cooldown += ` (reset: ${breaker.reset})`;
      const action = breaker.reset_queued
        ? el("span", { class: "hint", "data-testid": "reset-queued", text: "reset queued" })
        : may
          ? el("button", { type: "button", class: "danger", "data-testid": "reset", onclick: () => openReset(row, breaker, data.you) }, "Reset…")
          : null;
      const row = el("tr", { class: breaker.status, "data-breaker": breaker.key },
        el("td", {}, el("span", { class: "mono", text: breaker.breaker }), el("br"), el("span", { class: "hint", text: breaker.policy })),
        el("td", { class: "mono", text: breaker.subject }),
        el("td", { text: breaker.status + (breaker.severity ? ` (${breaker.severity})` : "") }),
        el("td", { class: "mono", title: exact, text: values }),
        el("td", { class: "mono", text: breaker.threshold ?? "— (not in the serving policies)" }),
        el("td", { text: time(breaker.since) }),
        el("td", { text: cooldown }),
        el("td", {}, action));
      return row;
    }, "every breaker is armed");
  }

  function openReset(row, breaker, you) {
    if (row.nextSibling && row.nextSibling.classList && row.nextSibling.classList.contains("form-row")) return;
    editing = true;
    const reason = el("input", { type: "text", name: "reason", placeholder: "why: the cause is dealt with", required: true, "data-testid": "reset-reason" });
    const by = you.identified ? null : el("input", { type: "text", name: "by", placeholder: "your name", required: true, "data-testid": "reset-by" });
    const form = el("form", { class: "inline", onsubmit: async (event) => {
      event.preventDefault();
      const body = { breaker: breaker.breaker, subject: breaker.subject, reason: reason.value.trim() };
      if (by) body.by = by.value.trim();
      const answer = await api("POST", "/api/v1/breakers/reset", body);
      if (answer.status === 202) {
        say(`reset of ${breaker.breaker} for ${breaker.subject} queued: the next cycle applies it`);
      } else {
        say(`reset refused (HTTP ${answer.status}): ${(answer.data && answer.data.error) || ""}`, true);
      }
      editing = false;
      refresh(true);
    } },
      el("span", { text: `Reset ${breaker.breaker} for ${breaker.subject}:` }), reason, by,
      el("button", { type: "submit", class: "danger", "data-testid": "reset-confirm" }, "Confirm reset"),
      el("button", { type: "button", onclick: () => { editing = false; refresh(true); } }, "Cancel"));
    const columns = row.children.length;
    row.after(el("tr", { class: "form-row" }, el("td", { colspan: columns }, form)));
    reason.focus();
  }

  function drawEscalations(data) {
    const box = document.querySelector('[data-testid="escalations"]');
    box.replaceChildren();
    // Manual escalation (POST / DELETE /api/v1/escalations): operators only.
    const mayEscalate = Boolean(data.you.may.escalate);
    const manual = data.manual_escalations || {};
    const choices = data.escalation_levels || {};
    const escalated = new Set();
    const held = (id) => {
      const m = manual[id];
      return m ? el("span", { class: "hint", "data-testid": "manual-escalation", text: `held at ${m.level} by ${m.by}: ${m.reason}, until ${m.until ? time(m.until) : "cleared"}` }) : "";
    };
    const actions = (row, id, you) => {
      const buttons = [];
      if (mayEscalate && choices[id]) buttons.push(el("button", { type: "button", "data-testid": "escalate", onclick: () => openEscalate(row, id, choices[id], you) }, "Escalate…"));
      if (mayEscalate && manual[id]) buttons.push(el("button", { type: "button", class: "danger", "data-testid": "escalation-clear", onclick: () => openClearEscalation(row, id, you) }, "Clear"));
      return buttons;
    };
    for (const group of data.escalations) {
      if (group.level === 0) {
        box.append(el("p", { class: "hint", text: `level 0 (none): ${group.count} position(s)` }));
        const calm = Object.keys(choices).filter((id) => !escalated.has(id));
        if (mayEscalate && calm.length) {
          const table = el("table", { "data-level": 0 },
            el("thead", {}, el("tr", {}, ...["position", "manual escalation", ""].map((h) => el("th", { text: h })))),
            el("tbody", {}, ...calm.map((id) => {
              const row = el("tr", { "data-position": id }, el("td", { class: "mono", text: id }), el("td", {}, held(id)));
              row.append(el("td", {}, ...actions(row, id, data.you)));
              return row;
            })));
          box.append(table);
        }
        continue;
      }
      const table = el("table", { "data-level": group.level },
        el("thead", {}, el("tr", {}, ...["position", "account", "symbol", "breach (ATR) now", "at entry to the level", "since", "policy", "manual escalation"].map((h) => el("th", { text: h })))),
        el("tbody", {}, ...group.positions.map((p) => {
          if (!p.shadow) escalated.add(p.position);
          const row = el("tr", { "data-position": p.position },
            el("td", { class: "mono", text: p.position + (p.shadow ? " (shadow)" : "") }),
            el("td", { class: "mono", text: p.account_id ?? "—" }),
            el("td", { class: "mono", text: p.symbol ?? "—" }),
            el("td", { class: "num", text: p.breach_atr_now ?? "—" }),
            el("td", { class: "num", text: p.breach_atr }),
            el("td", { text: time(p.since) }),
            el("td", { class: "mono", text: p.policy }));
          row.append(el("td", {}, p.shadow ? "" : held(p.position), ...(p.shadow ? [] : actions(row, p.position, data.you))));
          return row;
        })));
      box.append(el("h3", { text: `level ${group.level}: ${group.level_name} (${group.positions.length})` }), table);
    }
  }

  function openEscalate(row, positionId, levels, you) {
    if (row.nextSibling && row.nextSibling.classList && row.nextSibling.classList.contains("form-row")) return;
    editing = true;
    const level = el("select", { name: "level", "data-testid": "escalate-level" }, ...levels.slice(1).map((name) => el("option", { value: name, text: name })));
    const hours = el("select", { name: "hours" }, ...[1, 4, 24].map((h) => el("option", { value: h, text: `${h} h` })));
    const reason = el("input", { type: "text", name: "reason", placeholder: "why (audited)", required: true, "data-testid": "escalate-reason" });
    const by = you.identified ? null : el("input", { type: "text", name: "by", placeholder: "your name", required: true, "data-testid": "escalate-by" });
    const form = el("form", { class: "inline", onsubmit: async (event) => {
      event.preventDefault();
      const body = { position_id: positionId, level: level.value, reason: reason.value.trim(), ttl_s: Number(hours.value) * 3600 };
      if (by) body.by = by.value.trim();
      const answer = await api("POST", "/api/v1/escalations", body);
      if (answer.status === 200) say(`${positionId} held at least at ${level.value} for ${hours.value} h`);
      else say(`escalation refused (HTTP ${answer.status}): ${(answer.data && answer.data.error) || ""}`, true);
      editing = false;
      refresh(true);
    } },
      el("span", { text: `Escalate ${positionId} to at least` }), level, hours, reason, by,
      el("button", { type: "submit", class: "danger", "data-testid": "escalate-confirm" }, "Escalate"),
      el("button", { type: "button", onclick: () => { editing = false; refresh(true); } }, "Cancel"));
    row.after(el("tr", { class: "form-row" }, el("td", { colspan: row.children.length }, form)));
    reason.focus();
  }

  function openClearEscalation(row, positionId, you) {
    if (row.nextSibling && row.nextSibling.classList && row.nextSibling.classList.contains("form-row")) return;
    editing = true;
    const reason = el("input", { type: "text", name: "reason", placeholder: "why (audited)", required: true, "data-testid": "escalation-clear-reason" });
    const by = you.identified ? null : el("input", { type: "text", name: "by", placeholder: "your name", required: true });
    const form = el("form", { class: "inline", onsubmit: async (event) => {
      event.preventDefault();
      const body = { position_id: positionId, reason: reason.value.trim() };
      if (by) body.by = by.value.trim();
      const answer = await api("DELETE", "/api/v1/escalations", body);
      if (answer.status === 200) say(`manual escalation of ${positionId} cleared`);
      else say(`clear refused (HTTP ${answer.status}): ${(answer.data && answer.data.error) || ""}`, true);
      editing = false;
      refresh(true);
    } },
      el("span", { text: `Clear the manual escalation of ${positionId}:` }), reason, by,
      el("button", { type: "submit", class: "danger" }, "Confirm clear"),
      el("button", { type: "button", onclick: () => { editing = false; refresh(true); } }, "Cancel"));
    row.after(el("tr", { class: "form-row" }, el("td", { colspan: row.children.length }, form)));
    reason.focus();
  }

  function drawDecisions(data) {
    const dir = data.audit.directory;
    $("audit-hint").textContent = dir
      ? `Each decision is in the audit trail ${dir} (newest record ${data.audit.head ? data.audit.head.seq : "—"}); open a decision for the command that prints its record.`
      : "This service writes no audit trail (--no-audit).";
    rows("decisions", data.decisions, (decision) => {
      const command = dir
        ? `bastion audit show ${shellQuote(dir)} --kind decision_made --subject ${shellQuote(decision.subject)} --format json | grep ${shellQuote(decision.id)}`
        : "(no audit trail)";
      const detail = el("details", {},
        el("summary", { class: "mono", text: decision.id }),
        el("pre", { text: [...decision.reasons, "", ...Object.entries(decision.inputs).map(([k, v]) => `${k} = ${v}`)].join("\n") }),
        el("div", { class: "hint", text: "audit record:" }),
        el("pre", { class: "mono", "data-testid": "audit-command", text: command }));
      const actions = decision.actions.length ? " → " + decision.actions.join(", ") : "";
      return el("tr", { "data-decision": decision.id },
        el("td", { text: time(decision.time) }),
        el("td", { text: decision.kind + (decision.mode === "shadow" ? " (shadow)" : "") }),
        el("td", { class: "mono", text: decision.subject }),
        el("td", { text: `${decision.rule}: ${decision.outcome}${actions}` }),
        el("td", { class: "mono", title: decision.policy_version, text: `${decision.policy} @ ${short(decision.policy_version)}` }),
        el("td", {}, detail));
    }, "no decision since the service started");
  }

  function drawReloads(data) {
    rows("reloads", data.reloads, (reload) => el("tr", { class: "reload-" + reload.outcome },
      el("td", { text: time(reload.at) }),
      el("td", { class: reload.outcome === "reloaded" ? "" : "error", text: reload.outcome }),
      el("td", { class: "mono", title: reload.version, text: short(reload.version) }),
      el("td", { text: `${reload.principal ?? "—"} (${reload.trigger})` }),
      el("td", { class: "mono", text: (reload.changed || reload.errors || []).join("; ") })),
    "no reload since the service started");
    const versions = data.versions;
    $("versions").textContent = versions
      ? `serving ${short(versions.serving)}; kept for a rollback: ${versions.kept.map((k) => `${short(k.version)} (${k.trigger})`).join(", ")}`
      : "";
  }

  async function drawAlertsAndSilences(data) {
    let silences = [];
    if (silencesAvailable !== false) {
      const answer = await api("GET", "/api/v1/silences").catch(() => ({ status: 0, data: null }));
      if (answer.status === 404 || answer.status === 405) silencesAvailable = false;
      else if (answer.status === 200) {
        silencesAvailable = true;
        silences = Array.isArray(answer.data) ? answer.data : (answer.data && answer.data.silences) || [];
      }
    }
    const maySilence = data.you.may.silence && silencesAvailable === true;
    const firing = data.firing || data.alerts.filter((alert) => alert.event === "raised");
    rows("alerts", firing, (alert) => {
      const silence = alert.silenced_by
        ? el("span", { class: "hint mono", text: "silenced by " + alert.silenced_by })
        : maySilence
          ? el("button", { type: "button", "data-testid": "silence", onclick: () => openSilence(row, alert) }, "Silence…")
          : null;
      const row = el("tr", { class: "alert", "data-kind": alert.kind },
        el("td", { text: time(alert.at) }),
        el("td", { class: "sev-" + alert.severity, text: alert.severity }),
        el("td", { class: "mono", text: alert.kind }),
        el("td", { text: alert.summary }),
        el("td", {}, silence));
      return row;
    }, "no alert firing");
    rows("alert-events", data.alerts, (alert) => el("tr", { class: "alert-" + alert.event },
      el("td", { text: time(alert.at) }),
      el("td", { text: alert.event }),
      el("td", { class: "sev-" + alert.severity, text: alert.severity }),
      el("td", { class: "mono", text: alert.kind }),
      el("td", { text: alert.summary })),
    "no alert since the service started");
    const box = document.querySelector('[data-testid="silences"]');
    if (silencesAvailable === false) {
      box.replaceChildren(el("p", { class: "hint", text: "This service has no silences endpoint (GET /api/v1/silences)." }));
      return;
    }
    box.replaceChildren(silences.length
      ? el("ul", {}, ...silences.map((s) => el("li", { "data-silence": s.id },
        el("span", { class: "mono", text: Object.entries(s.matchers || {}).map(([k, v]) => `${k}=${v}`).join(" ") }),
        ` — ${s.status || ""} until ${time(s.ends_at)}, by ${s.created_by || "?"}: `,
        el("span", { text: s.reason || "" }))))
      : el("p", { class: "empty", text: "no silence" }));
  }

  function openSilence(row, alert) {
    if (row.nextSibling && row.nextSibling.classList && row.nextSibling.classList.contains("form-row")) return;
    editing = true;
    const reason = el("input", { type: "text", name: "reason", placeholder: "why (audited)", required: true });
    const hours = el("select", { name: "hours" }, ...[1, 4, 24].map((h) => el("option", { value: h, text: `${h} h` })));
    const matchers = alert.matchers;
    const form = el("form", { class: "inline", onsubmit: async (event) => {
      event.preventDefault();
      const body = { matchers, reason: reason.value.trim(), duration_s: Number(hours.value) * 3600 };
      const answer = await api("POST", "/api/v1/silences", body);
      if (answer.status >= 200 && answer.status < 300) say("silence created: " + Object.entries(matchers).map(([k, v]) => `${k}=${v}`).join(" "));
      else say(`silence refused (HTTP ${answer.status}): ${(answer.data && answer.data.error) || ""}`, true);
      editing = false;
      refresh(true);
    } },
      el("span", { class: "mono", text: "silence " + Object.entries(matchers).map(([k, v]) => `${k}=${v}`).join(" ") }),
      hours, reason,
      el("button", { type: "submit" }, "Silence"),
      el("button", { type: "button", onclick: () => { editing = false; refresh(true); } }, "Cancel"));
    row.after(el("tr", { class: "form-row" }, el("td", { colspan: row.children.length }, form)));
    reason.focus();
  }

  refresh(true);
  timer = window.setInterval(() => refresh(false), REFRESH_S * 1000);
  window.addEventListener("beforeunload", () => window.clearInterval(timer));
})();
