// The operator's console: reads and acts only through the documented admin API (docs/admin-api.md), so a
// script can do all it does. Data is only ever put in the page as text (never as HTML).
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { token: sessionStorage.getItem("wsapi-token") || "", events: null, timer: null, before: null, listen: null };

// ----- the admin API -----------------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const resp = await fetch(path, Object.assign({}, options, { headers }));
  if (resp.status === 401) {
    signOut("The admin token was refused.");
    throw new Error("unauthorized");
  }
  return resp;
}

async function json(path, options) {
  const resp = await api(path, options);
  if (!resp.ok) throw new Error(path + ": " + resp.status);
  return resp.json();
}

// ----- signing in --------------------------------------------------------------------------------

async function signIn(token) {
  state.token = token;
  try {
    const resp = await fetch("/calls", { headers: token ? { Authorization: "Bearer " + token } : {} });
    if (resp.status === 401) throw new Error("refused");
    sessionStorage.setItem("wsapi-token", token);
    $("#sign-in").hidden = true;
    $("#nav").hidden = false;
    show("live");
    startLive();
    checkFleet();
  } catch (e) {
    signOut(token ? "The admin token was refused." : "");
  }
}

function signOut(why) {
  stopLive();
  state.token = "";
  sessionStorage.removeItem("wsapi-token");
  for (const id of ["live", "history", "call", "fleet"]) $("#" + id).hidden = true;
  $("#nav").hidden = true;
  $("#sign-in").hidden = false;
  $("#sign-in-error").textContent = why || "";
  $("#token").focus();
}

// ----- views -------------------------------------------------------------------------------------

function show(view) {
  for (const id of ["live", "history", "call", "fleet"]) $("#" + id).hidden = id !== view;
  for (const b of document.querySelectorAll("nav [data-view]")) {
    if (b.dataset.view === view) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  if (view === "history") loadHistory(false);
  if (view === "fleet") loadFleet();
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

/// Numbers as the logs show them: all but the last four digits masked.
function mask(number) {
  const digits = (number || "").replace(/\D/g, "").length;
  let seen = 0;
  return (number || "").replace(/\d/g, (d) => (++seen + 4 > digits ? d : "*"));
}

function seconds(ms) {
  return ms == null ? "" : (ms / 1000).toFixed(1) + " s";
}

function since(iso) {
  const t = Date.parse(iso);
  return isNaN(t) ? "" : seconds(Date.now() - t);
}

// ----- live --------------------------------------------------------------------------------------

function startLive() {
  stopLive();
  refreshLive();
  state.timer = setInterval(() => {
    refreshLive();
    if (!$("#fleet").hidden) loadFleet();
  }, 1000);
  openEvents();
}

function stopLive() {
  stopListening();
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
  if (state.events) state.events.close();
  state.events = null;
}

async function refreshLive() {
  let list;
  try {
    list = await json("/calls");
  } catch (e) {
    return;
  }
  const cap = list.max_concurrent_calls;
  $("#cap-meter").max = Math.max(cap, 1);
  $("#cap-meter").value = list.active;
  $("#cap-text").textContent = list.active + " of " + cap + " (" + list.available + " available" + (list.draining ? ", draining" : "") + ")";
  if (document.activeElement !== $("#cap-input")) $("#cap-input").value = cap;
  const byCarrier = {};
  for (const c of list.calls) {
    const key = c.carrier + (c.route ? " · " + c.route : "");
    byCarrier[key] = (byCarrier[key] || 0) + 1;
  }
  counts($("#by-carrier"), byCarrier);
  const body = $("#live-table tbody");
  const focus = focusedAction(body);
  body.replaceChildren();
  for (const c of list.calls) {
    const row = document.createElement("tr");
    row.dataset.callId = c.call_id;
    row.dataset.carrier = c.carrier;
    cell(row, c.call_id);
    cell(row, c.carrier);
    cell(row, c.route);
    cell(row, c.agent_id);
    cell(row, mask(c.from));
    cell(row, mask(c.to));
    cell(row, c.state);
    cell(row, since(c.started_at), "num");
    cell(row, c.frames_in + " / " + c.frames_out, "num frames");
    cell(row, c.interruptions, "num");
    cell(row, c.conversation_id);
    cell(row, [c.last_user_transcript, c.last_agent_response].filter(Boolean).join(" — "));
    const actions = cell(row, "");
    actions.append(button("Details", () => openCall(c.call_id, c.carrier, c.attempt)));
    const listening = state.listen && state.listen.id === c.call_id && state.listen.carrier === c.carrier;
    actions.append(listening ? button("Stop listening", stopListening) : button("Listen", () => listen(c.call_id, c.carrier)));
    actions.append(button("Hang up", () => hangUp(c.call_id, c.carrier), "danger"));
    body.appendChild(row);
  }
  restoreFocus(body, focus);
}

/// The row and button that have the keyboard's focus, so a refresh of the table does not take it away.
function focusedAction(body) {
  const el = document.activeElement;
  const row = el && body.contains(el) ? el.closest("tr") : null;
  return row ? { callId: row.dataset.callId, label: el.textContent } : null;
}

function restoreFocus(body, focus) {
  if (!focus) return;
  const row = [...body.querySelectorAll("tr")].find((r) => r.dataset.callId === focus.callId);
  const buttons = row ? [...row.querySelectorAll("button")] : [];
  const again = buttons.find((b) => b.textContent === focus.label) || buttons[0];
  if (again) again.focus();
}

function counts(dl, values) {
  dl.replaceChildren();
  for (const [name, n] of Object.entries(values)) {
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = name;
    dd.textContent = n;
    div.append(dt, dd);
    dl.appendChild(div);
  }
}

function button(label, action, cls) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener("click", action);
  return b;
}

async function openEvents() {
  let url = "/calls/events";
  if (state.token) {
    try {
      const t = await json("/calls/events/ticket", { method: "POST" });
      url += "?ticket=" + encodeURIComponent(t.ticket);
    } catch (e) {
      return;
    }
  }
  const source = new EventSource(url);
  state.events = source;
  source.addEventListener("call", (e) => feed(JSON.parse(e.data)));
  source.addEventListener("counters", (e) => {
    const all = JSON.parse(e.data);
    const b = all.breaker || {};
    const account = b.account || {};
    const agents = b.agents_unavailable || [];
    $("#breaker").textContent = account.state === "open" ? "ElevenLabs: breaker open (" + account.reason + ")"
      : agents.length ? "ElevenLabs: agents unavailable: " + agents.join(", ") : "ElevenLabs: taking calls";
    $("#breaker").dataset.state = account.state || "";
    const c = all.counters || {};
    const refused = {};
    for (const [k, v] of Object.entries(c)) if (k.startsWith("refused") && v) refused[k.replace(/_/g, " ")] = v;
    counts($("#refusals"), refused);
  });
  source.onerror = () => {
    source.close();
    if (state.events === source) {
      state.events = null;
      setTimeout(() => state.token !== null && !$("#nav").hidden && openEvents(), 2000);
    }
  };
}

function feed(ev) {
  const li = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = new Date(ev.at).toLocaleTimeString();
  li.append(time, [ev.call_id, ev.carrier, ev.event, ev.state, ev.reason].filter(Boolean).join(" · "));
  const list = $("#feed");
  list.prepend(li);
  while (list.children.length > 200) list.lastChild.remove();
}

async function hangUp(id, carrier) {
  $("#confirm-text").textContent = "Hang up call " + id + " (" + carrier + ")? The caller is cut off.";
  const dialog = $("#confirm");
  dialog.showModal();
  dialog.addEventListener("close", async function once() {
    dialog.removeEventListener("close", once);
    if (dialog.returnValue !== "ok") return;
    await api("/calls/" + encodeURIComponent(id) + "?carrier=" + encodeURIComponent(carrier), { method: "DELETE" });
    refreshLive();
  });
}

// ----- listening in ------------------------------------------------------------------------------

// The listen socket sends {"rate"} then frames: a side byte (0 caller, 1 agent) and PCM16 LE samples. Each
// side is played on its own clock, caller left and agent right, never more than a second behind.
const SIDES = ["caller", "agent"];

async function listen(id, carrier) {
  stopListening();
  const path = "/calls/" + encodeURIComponent(id);
  let query = "?carrier=" + encodeURIComponent(carrier);
  if (state.token) {
    try {
      const t = await json(path + "/listen/ticket", { method: "POST" });
      query += "&ticket=" + encodeURIComponent(t.ticket);
    } catch (e) {
      return;
    }
  }
  const audio = new AudioContext();
  const sides = SIDES.map((name, i) => {
    const gain = audio.createGain();
    const pan = new StereoPannerNode(audio, { pan: i === 0 ? -1 : 1 });
    const analyser = audio.createAnalyser();
    gain.connect(pan).connect(audio.destination);
    gain.connect(analyser);
    return { name, gain, analyser, next: 0, bytes: 0 };
  });
  const socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + path + "/listen" + query);
  socket.binaryType = "arraybuffer";
  const l = { id, carrier, socket, audio, sides, rate: 8000, levels: setInterval(showLevels, 100) };
  state.listen = l;
  socket.onmessage = (e) => (typeof e.data === "string" ? (l.rate = JSON.parse(e.data).rate) : play(l, e.data));
  socket.onclose = (e) => {
    if (state.listen === l) stopListening("Listening ended: " + (e.reason || "the connection closed") + ".");
  };
  $("#listening").hidden = false;
  $("#listen-title").textContent = "Listening to call " + id + " (" + carrier + ")";
  $("#listen-stats").textContent = "";
  $("#listen-stop").hidden = false;
  refreshLive();
}

function play(l, data) {
  const view = new DataView(data);
  const side = l.sides[view.getUint8(0)];
  const n = (data.byteLength - 1) >> 1;
  if (!side || !n) return;
  side.bytes += data.byteLength - 1;
  const buffer = l.audio.createBuffer(1, n, l.rate);
  const samples = buffer.getChannelData(0);
  for (let i = 0; i < n; i++) samples[i] = view.getInt16(1 + 2 * i, true) / 32768;
  const now = l.audio.currentTime;
  if (side.next < now || side.next > now + 1) side.next = now + 0.1;
  const source = l.audio.createBufferSource();
  source.buffer = buffer;
  source.connect(side.gain);
  source.start(side.next);
  side.next += buffer.duration;
}

function showLevels() {
  const l = state.listen;
  if (!l) return;
  const kb = (b) => (b / 1024).toFixed(1) + " KB";
  for (const side of l.sides) {
    const data = new Float32Array(side.analyser.fftSize);
    side.analyser.getFloatTimeDomainData(data);
    const rms = Math.sqrt(data.reduce((sum, x) => sum + x * x, 0) / data.length);
    $("#level-" + side.name).value = Math.min(1, rms * 4);
    $("#listening").dataset[side.name + "Bytes"] = side.bytes;
  }
  $("#listening").dataset.audio = l.audio.state;
  $("#listen-stats").textContent = l.sides.map((s) => s.name + " " + kb(s.bytes)).join(" · ") + " heard";
}

function stopListening(why) {
  const l = state.listen;
  state.listen = null;
  if (l) {
    clearInterval(l.levels);
    l.socket.onclose = null;
    l.socket.close();
    l.audio.close();
    refreshLive();
  }
  $("#listen-title").textContent = typeof why === "string" ? why : "";
  $("#listening").hidden = typeof why !== "string";
  $("#listen-stop").hidden = typeof why === "string";
}

// ----- history -----------------------------------------------------------------------------------

function historyQuery() {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData($("#history-form"))) {
    if (!v) continue;
    params.set(k, k === "since" || k === "before" ? String(Date.parse(v)) : v);
  }
  return params;
}

async function loadHistory(older) {
  const params = historyQuery();
  if (older && state.before) params.set("before", state.before);
  let list;
  try {
    list = await json("/calls/history?" + params);
  } catch (e) {
    return;
  }
  const body = $("#history-table tbody");
  if (!older) body.replaceChildren();
  for (const c of list.calls) {
    const row = document.createElement("tr");
    row.className = "link";
    row.dataset.callId = c.call_id;
    row.tabIndex = 0;
    const verdict = (c.outcome || {}).call_successful;
    for (const v of [c.call_id, c.carrier, c.route, c.state, c.end_reason, c.started_at, seconds(c.duration_ms), mask(c.from), mask(c.to), verdict]) cell(row, v);
    const open = () => openCall(c.call_id, c.carrier, c.attempt);
    row.addEventListener("click", open);
    row.addEventListener("keydown", (e) => e.key === "Enter" && open());
    body.appendChild(row);
  }
  const last = list.calls[list.calls.length - 1];
  state.before = last ? Date.parse(last.started_at) : null;
  $("#older").hidden = list.calls.length < 50;
}

async function downloadCsv() {
  const resp = await api("/calls/history.csv?" + historyQuery());
  if (!resp.ok) return;
  const url = URL.createObjectURL(await resp.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = "calls-history.csv";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ----- one call ----------------------------------------------------------------------------------

async function openCall(id, carrier, attempt) {
  let c;
  try {
    c = await json("/calls/" + encodeURIComponent(id) + "?carrier=" + encodeURIComponent(carrier) + (attempt ? "&attempt=" + attempt : ""));
  } catch (e) {
    return;
  }
  show("call");
  $("#call-title").textContent = "Call " + c.call_id;
  const facts = $("#call-facts");
  facts.replaceChildren();
  const shown = ["carrier", "attempt", "state", "end_reason", "route", "agent_id", "direction", "started_at", "answered_at", "ended_at",
    "duration_ms", "frames_in", "frames_out", "interruptions", "upstream_reconnects", "conversation_ids", "error_detail", "dial_status", "recording_url"];
  for (const k of shown) {
    if (c[k] == null || c[k] === "") continue;
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = k.replace(/_/g, " ");
    dd.textContent = k === "from" || k === "to" ? mask(c[k]) : Array.isArray(c[k]) ? c[k].join(", ") : String(c[k]);
    facts.append(dt, dd);
  }
  for (const a of c.analyses || []) {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = "verdict";
    dd.textContent = [a.call_successful, a.title, a.summary, a.cost != null ? "cost " + a.cost : null, a.failure].filter(Boolean).join(" — ");
    dd.dataset.conversation = a.conversation_id;
    facts.append(dt, dd);
  }
  if (c.recording) {
    const r = c.recording;
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = "recording";
    dd.textContent = r.path + " — " + seconds(r.duration_ms) + (r.complete ? ", complete" : ", incomplete (" + r.lost_ms + " ms lost" + (r.error ? ": " + r.error : "") + ")") + (r.paused_ms ? ", " + seconds(r.paused_ms) + " paused" : "");
    facts.append(dt, dd);
  }
  const timeline = $("#timeline");
  timeline.replaceChildren();
  for (const e of c.events || []) {
    const li = document.createElement("li");
    li.dataset.kind = e.kind;
    const time = document.createElement("time");
    time.textContent = e.at;
    li.append(time, e.kind.replace(/_/g, " ") + ": " + e.detail);
    timeline.appendChild(li);
  }
  if (!(c.events || []).length) {
    const li = document.createElement("li");
    li.textContent = "Live: its timeline is stored when the call ends.";
    timeline.appendChild(li);
  }
}

// ----- fleet -------------------------------------------------------------------------------------

async function checkFleet() {
  const resp = await api("/fleet").catch(() => null);
  $("#fleet-tab").hidden = !(resp && resp.ok);
}

async function loadFleet() {
  let f, all;
  try {
    [f, all] = await Promise.all([json("/fleet"), json("/calls?scope=fleet")]);
  } catch (e) {
    return;
  }
  $("#fleet-cap").textContent = "Fleet cap " + f.max_concurrent_calls + ", " + f.live_calls + " live calls, " + f.held_slots + " slots held";
  const body = $("#fleet-table tbody");
  body.replaceChildren();
  for (const i of f.instances || []) {
    const row = document.createElement("tr");
    const draining = i.expired ? "lease expired" : i.draining ? "yes" : "no";
    for (const v of [i.instance_id, seconds(i.lease_age_ms), i.live_calls, i.held_slots, draining]) cell(row, v);
    body.appendChild(row);
  }
  const calls = $("#fleet-calls tbody");
  calls.replaceChildren();
  for (const c of all.calls || []) {
    const row = document.createElement("tr");
    row.dataset.callId = c.call_id;
    row.dataset.instance = c.instance_id;
    for (const v of [c.instance_id, c.call_id, c.carrier, c.route, c.state, since(c.started_at)]) cell(row, v);
    cell(row, c.frames_in + " / " + c.frames_out, "num frames");
    const actions = cell(row, "");
    actions.append(button("Details", () => openCall(c.call_id, c.carrier, c.attempt)));
    // Hang-ups are sent on to the instance that holds the call; listening is that instance's own.
    actions.append(button("Hang up", () => hangUp(c.call_id, c.carrier), "danger"));
    calls.appendChild(row);
  }
  for (const i of all.instances || []) {
    if (!i.error) continue;
    const row = document.createElement("tr");
    cell(row, i.instance_id);
    cell(row, "unreachable: " + i.error).colSpan = 7;
    calls.appendChild(row);
  }
}

// ----- wiring ------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("nav [data-view]")) b.addEventListener("click", () => show(b.dataset.view));
  $("#sign-out").addEventListener("click", () => signOut(""));
  $("#sign-in-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("#token").value);
  });
  $("#cap-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const n = Number($("#cap-input").value);
    await api("/calls/limit", { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ max_concurrent_calls: n }) });
    $("#cap-input").blur();
    refreshLive();
  });
  $("#history-form").addEventListener("submit", (e) => {
    e.preventDefault();
    loadHistory(false);
  });
  $("#older").addEventListener("click", () => loadHistory(true));
  $("#csv").addEventListener("click", downloadCsv);
  $("#call-back").addEventListener("click", () => show("live"));
  $("#listen-stop").addEventListener("click", () => stopListening());
  window.addEventListener("hashchange", () => {
    const token = tokenFromHash();
    if (token !== null) signIn(token);
  });
  const token = tokenFromHash();
  signIn(token !== null ? token : state.token);
});

/// `#token=`: signs in at once. A fragment never reaches the server; it is taken off the address too.
function tokenFromHash() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (token !== null) history.replaceState(null, "", location.pathname);
  return token;
}
