// The npcbridge console page. It speaks the game protocol (msgpack over WebSocket) for
// everything a game can do — define NPCs, talk, read and forget memories — and reads the
// admin endpoints under /console/api/ for what a game never needs (turn records, metrics).
// No framework, no build step.
"use strict";

const $ = (selector) => document.querySelector(selector);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
};
const usd = (value) => (value === null || value === undefined ? "—" : "$" + Number(value).toFixed(6));
const ms = (value) => (value === null || value === undefined ? "—" : Number(value).toFixed(1) + " ms");

const state = {
  token: sessionStorage.getItem("npcbridge.token") || "",
  ws: null,
  pending: new Map(),
  nextId: 1,
  overview: null,
  defined: new Map(), // npc key on this connection -> persona JSON sent
  lastLine: null,
  samples: [],
  selectedTurn: null,
};

// ------------------------------------------------------------------ admin endpoints

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const response = await fetch("/console/api/" + path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    showLogin("");
    throw new Error("unauthorized");
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error((body && body.message) || response.statusText);
  return body;
}

function showLogin(message) {
  $("#login").hidden = false;
  $("main").hidden = true;
  $("#login-error").textContent = message;
}

// ------------------------------------------------------------------ the game protocol

function setStatus(text, kind) {
  const status = $("#status");
  status.textContent = text;
  status.className = "status " + (kind || "");
}

function connect() {
  return new Promise((resolve, reject) => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/`);
    ws.binaryType = "arraybuffer";
    state.ws = ws;
    ws.onopen = () => {
      const hello = { type: "hello", protocol: 1, client: "npcbridge-console/0.1" };
      if (state.token) hello.token = state.token;
      ws.send(msgpack.encode(hello));
    };
    ws.onmessage = (event) => {
      const frame = msgpack.decode(event.data);
      if (frame.type === "welcome") {
        setStatus(`${frame.server} · session ${frame.session}`, "ok");
        state.welcome = frame;
        request({ type: "x.console.attach" }).then(() => resolve(frame), reject);
        return;
      }
      const handler = state.pending.get(frame.id);
      if (handler) handler(frame);
      else if (frame.type === "error") setStatus("error: " + frame.message, "bad");
    };
    ws.onclose = (event) => {
      setStatus(`disconnected (${event.code}); reload to reconnect`, "bad");
      if (event.code === 4001) showLogin("The token was refused.");
      reject(new Error("closed"));
    };
  });
}

function send(message) {
  state.ws.send(msgpack.encode(message));
}

// one request answered by one frame (ok, memory, error)
function request(message) {
  const id = "c-" + state.nextId++;
  return new Promise((resolve, reject) => {
    state.pending.set(id, (frame) => {
      state.pending.delete(id);
      if (frame.type === "error") reject(new Error(frame.message));
      else resolve(frame);
    });
    send(Object.assign({ id }, message));
  });
}

// a say: every frame of its reply goes to onFrame until reply.end or error
function say(message, onFrame) {
  const id = "c-" + state.nextId++;
  return new Promise((resolve) => {
    state.pending.set(id, (frame) => {
      onFrame(frame);
      if (frame.type === "reply.end" || frame.type === "error") {
        state.pending.delete(id);
        resolve(frame);
      }
    });
    send(Object.assign({ type: "say", id }, message));
  });
}

// ------------------------------------------------------------------ persona form

const LIST_FIELDS = ["knowledge", "examples"];
const COMMA_FIELDS = ["topics", "fallbacks"];
const NUMBER_FIELDS = ["temperature", "max_tokens", "latency_budget_ms", "budget_usd_per_day"];
const BOOL_FIELDS = ["quality", "cacheable"];
const TEXT_FIELDS = ["name", "description", "personality", "speech_style", "system_prompt", "model", "tier"];

function readPersona() {
  const form = $("#persona");
  const persona = {};
  for (const name of TEXT_FIELDS) {
    const value = form.elements[name].value.trim();
    if (value) persona[name] = value;
  }
  for (const name of LIST_FIELDS) {
    const lines = form.elements[name].value.split("\n").map((s) => s.trim()).filter(Boolean);
    if (lines.length) persona[name] = lines;
  }
  for (const name of COMMA_FIELDS) {
    const items = form.elements[name].value.split(",").map((s) => s.trim()).filter(Boolean);
    if (items.length) persona[name] = items;
  }
  for (const name of NUMBER_FIELDS) {
    const value = form.elements[name].value;
    if (value !== "") persona[name] = Number(value);
  }
  if (persona.max_tokens !== undefined) persona.max_tokens = Math.round(persona.max_tokens);
  for (const name of BOOL_FIELDS) {
    if (form.elements[name].checked) persona[name] = true;
  }
  const actions = form.elements.actions.value.trim();
  if (actions) persona.actions = JSON.parse(actions);
  return persona;
}

function fillPersona(persona) {
  const form = $("#persona");
  for (const name of TEXT_FIELDS) form.elements[name].value = persona[name] ?? "";
  for (const name of LIST_FIELDS) form.elements[name].value = (persona[name] || []).join("\n");
  for (const name of COMMA_FIELDS) form.elements[name].value = (persona[name] || []).join(", ");
  for (const name of NUMBER_FIELDS) form.elements[name].value = persona[name] ?? "";
  for (const name of BOOL_FIELDS) form.elements[name].checked = Boolean(persona[name]);
  form.elements.actions.value = persona.actions ? JSON.stringify(persona.actions, null, 1) : "";
}

async function definePersona(event) {
  event.preventDefault();
  const status = $("#persona-status");
  try {
    const key = $("#npc-key").value.trim();
    const persona = readPersona();
    await request({ type: "npc.define", npc: key, persona });
    state.defined.set(key, persona);
    for (const variant of [...state.defined.keys()]) {
      if (variant.startsWith(key + "@")) state.defined.delete(variant);
    }
    status.textContent = `Defined ${key} on this connection.`;
    status.className = "note";
  } catch (error) {
    status.textContent = error.message;
    status.className = "error";
  }
}

// the NPC key that answers with `model` (a variant defined with that model), defined on demand
async function npcFor(model) {
  const key = $("#npc-key").value.trim();
  const base = state.defined.get(key) || (state.overview.npcs[key] && Object.assign({}, state.overview.npcs[key]));
  if (!base) throw new Error("Define the NPC first (or pick one from the config).");
  if (!model) {
    if (!state.defined.has(key) && !state.overview.npcs[key]) throw new Error("Define the NPC first.");
    return key;
  }
  const variant = `${key}@${model}`;
  if (!state.defined.has(variant)) {
    const persona = Object.assign({}, base, { model });
    await request({ type: "npc.define", npc: variant, persona });
    state.defined.set(variant, persona);
  }
  return variant;
}

async function readCard(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (bytes[0] === 0x89 && bytes[1] === 0x50) {
    // a PNG card: the JSON is base64 in a tEXt chunk named "chara" (or "ccv3")
    const view = new DataView(bytes.buffer);
    for (let pos = 8; pos + 8 <= bytes.length; ) {
      const length = view.getUint32(pos);
      const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
      if (type === "tEXt") {
        const data = bytes.subarray(pos + 8, pos + 8 + length);
        const zero = data.indexOf(0);
        const keyword = String.fromCharCode(...data.subarray(0, zero));
        if (keyword === "chara" || keyword === "ccv3") {
          const text = atob(String.fromCharCode(...data.subarray(zero + 1)));
          return JSON.parse(new TextDecoder().decode(Uint8Array.from(text, (c) => c.charCodeAt(0))));
        }
      }
      pos += 12 + length;
    }
    throw new Error("no character data in this PNG");
  }
  return JSON.parse(new TextDecoder().decode(bytes));
}

async function importCard(event) {
  const status = $("#persona-status");
  try {
    const card = await readCard(event.target.files[0]);
    const { persona } = await api("card", { method: "POST", body: JSON.stringify(card), headers: { "Content-Type": "application/json" } });
    fillPersona(persona);
    $("#npc-key").value = persona.name.toLowerCase().replace(/[^a-z0-9_-]+/g, "_");
    status.textContent = `Imported ${persona.name}; press Define NPC to use it.`;
    status.className = "note";
  } catch (error) {
    status.textContent = "Card import: " + error.message;
    status.className = "error";
  }
}

async function exportPersona(format) {
  const status = $("#persona-status");
  try {
    const key = $("#npc-key").value.trim();
    const body = JSON.stringify({ npc: key, persona: readPersona() });
    const out = await api("export?format=" + format, { method: "POST", body, headers: { "Content-Type": "application/json" } });
    const text = format === "card" ? JSON.stringify(out, null, 2) : out;
    const pre = $("#export-out");
    pre.hidden = false;
    pre.textContent = text;
    const blob = new Blob([text], { type: format === "card" ? "application/json" : "application/toml" });
    const link = el("a", { href: URL.createObjectURL(blob), download: format === "card" ? `${key}.card.json` : `${key}.toml` });
    link.click();
    status.textContent = format === "card" ? "Saved as a Character Card V2." : "Saved as a [npcs.*] table.";
    status.className = "note";
  } catch (error) {
    status.textContent = error.message;
    status.className = "error";
  }
}

// ------------------------------------------------------------------ talking

function replyBox(label) {
  const text = el("div", { class: "text" });
  const extras = el("div");
  const meta = el("div", { class: "meta" });
  const box = el("div", { class: "reply streaming" }, el("div", { class: "who" }, label), text, extras, meta);
  return { box, text, extras, meta };
}

async function talkOnce(line, model, view) {
  const npc = await npcFor(model);
  const message = { npc, player: $("#player").value.trim() || "console", text: line, urgency: $("#urgency").value };
  const temperature = $("#line-temperature").value;
  if (temperature !== "") message.temperature = Number(temperature);
  const end = await say(message, (frame) => {
    if (frame.type === "reply.start") view.box.querySelector(".who").textContent = `${npc} · ${frame.model}`;
    else if (frame.type === "reply.delta") view.text.textContent += frame.text;
    else if (frame.type === "emote") view.extras.append(el("div", { class: "emote" }, "*" + frame.emote + "*"));
    else if (frame.type === "action") view.extras.append(el("div", { class: "action" }, `⚙ ${frame.name}(${JSON.stringify(frame.args)})`));
  });
  view.box.classList.remove("streaming");
  if (end.type === "error") {
    view.meta.append(el("span", { class: "error" }, `${end.code}: ${end.message}`));
    return;
  }
  view.text.textContent = end.text;
  const usage = end.usage || {};
  view.meta.append(
    `${end.model} · ${end.finish} · ${usage.input_tokens}→${usage.output_tokens} tokens · ${usd(end.cost_usd)} · TTFT ${ms(end.timing.ttft_ms)} · total ${ms(end.timing.total_ms)} · `,
    el("a", { class: "inspect", onclick: () => inspectRequest(end.id) }, "inspect")
  );
  view.box.dataset.requestId = end.id;
}

async function talk(line) {
  state.lastLine = line;
  $("#regenerate").disabled = false;
  const chat = $("#chat");
  chat.append(el("div", { class: "line player" }, el("b", {}, ($("#player").value || "console") + ": "), line));
  const models = [$("#line-model").value];
  if ($("#compare").checked) models.push($("#line-model-b").value);
  const views = models.map((model) => replyBox(model || "selection rule"));
  chat.append(el("div", { class: "replies" }, views.map((v) => v.box)));
  chat.scrollTop = chat.scrollHeight;
  await Promise.all(
    models.map((model, i) =>
      talkOnce(line, model, views[i]).catch((error) => {
        views[i].box.classList.remove("streaming");
        views[i].meta.append(el("span", { class: "error" }, error.message));
      })
    )
  );
  chat.scrollTop = chat.scrollHeight;
}

// ------------------------------------------------------------------ inspector

async function refreshTurns() {
  const { turns } = await api("turns");
  const body = $("#turns tbody");
  body.replaceChildren(
    ...turns.map((t) =>
      el(
        "tr",
        { dataset: { id: t.id, requestId: t.request_id }, class: state.selectedTurn === t.id ? "selected" : "", onclick: () => showTurn(t.id) },
        el("td", {}, t.id),
        el("td", {}, t.npc),
        el("td", {}, t.player),
        el("td", {}, t.model),
        el("td", {}, t.finish),
        el("td", {}, ms(t.ttft_ms)),
        el("td", {}, usd(t.cost_usd))
      )
    )
  );
  return turns;
}

async function inspectRequest(requestId) {
  openTab("inspector");
  for (let i = 0; i < 10; i++) {
    const turns = await refreshTurns();
    const found = turns.find((t) => t.request_id === String(requestId));
    if (found) return showTurn(found.id);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function kv(pairs) {
  return el("dl", { class: "kv" }, pairs.map(([k, v, id]) => [el("dt", {}, k), el("dd", id ? { id } : {}, v ?? "—")]));
}

async function showTurn(id) {
  state.selectedTurn = id;
  const t = await api("turns/" + id);
  const detail = $("#turn-detail");
  const steps = t.steps.length ? t.steps.map((s) => `${s.model}: ${s.outcome}${s.reason ? " (" + s.reason + ")" : ""}`).join(" → ") : "—";
  detail.replaceChildren(
    el("h2", {}, `Turn ${t.id} · ${t.npc} ↔ ${t.player} · ${t.source}`),
    kv([
      ["request", t.request_id],
      ["kind / urgency", `${t.kind} / ${t.urgency}`],
      ["model chosen", t.model.chosen, "detail-model"],
      ["chosen by", `${t.model.plugin || "default model"}${t.model.rule ? ": " + t.model.rule : ""}`, "detail-rule"],
      ["served by", t.model.served],
      ["attempts", steps, "detail-steps"],
      ["finish", t.finish + (t.error_code ? ` (${t.error_code})` : "") + (t.cached ? " · cached" : ""), "detail-finish"],
      ["tokens", `${t.usage.input_tokens} in, ${t.usage.output_tokens} out${t.usage.estimated ? " (estimated)" : ""}`, "detail-tokens"],
      ["cost", usd(t.cost_usd), "detail-cost"],
      ["timing", `queue ${ms(t.timing.queue_ms)} · TTFT ${ms(t.timing.ttft_ms)} · total ${ms(t.timing.total_ms)}`, "detail-timing"],
    ]),
    el("h2", {}, "System prompt"),
    el("div", { id: "detail-prompt" }, t.prompt.parts.map((p) => el("div", { class: "part" }, el("div", { class: "plugin" }, `${p.plugin} · ${p.stage}`), el("pre", {}, p.text)))),
    el("h2", {}, "Recalled memories"),
    t.memories.length
      ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "score"), el("th", {}, "kind"), el("th", {}, "importance"), el("th", {}, "text"))),
          el("tbody", {}, t.memories.map((m) => el("tr", {}, el("td", {}, m.score.toFixed(3)), el("td", {}, m.kind), el("td", {}, m.importance), el("td", {}, m.text)))))
      : el("p", { class: "note" }, "none"),
    el("h2", {}, "Messages sent upstream"),
    el("pre", { id: "detail-messages" }, JSON.stringify(t.prompt.messages, null, 1)),
    el("h2", {}, "Tools"),
    el("pre", {}, t.prompt.tools.length ? JSON.stringify(t.prompt.tools, null, 1) : "none"),
    el("h2", {}, "What came back"),
    el("pre", { id: "detail-reply" }, t.reply.text),
    t.reply.emotes.length ? el("p", { class: "emote" }, t.reply.emotes.map((e) => "*" + e + "*").join(" ")) : null,
    t.reply.actions.length ? el("pre", { class: "action" }, JSON.stringify(t.reply.actions)) : null
  );
  for (const row of document.querySelectorAll("#turns tbody tr")) row.classList.toggle("selected", Number(row.dataset.id) === id);
}

// ------------------------------------------------------------------ metrics

function lineChart(canvas, values, color, max) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = "#2f3440";
  ctx.strokeRect(0, 0, width, height);
  if (values.length < 2) return;
  const top = max ?? Math.max(...values, 1e-9);
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / (values.length - 1)) * (width - 4) + 2;
    const y = height - 4 - (v / top) * (height - 8);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#9aa1ad";
  ctx.font = "11px sans-serif";
  ctx.fillText(top.toFixed(2), 4, 12);
}

function barChart(canvas, labels, values) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const top = Math.max(...values, 1);
  const w = width / Math.max(values.length, 1);
  ctx.font = "10px sans-serif";
  values.forEach((v, i) => {
    const h = (v / top) * (height - 24);
    ctx.fillStyle = "#e0a84f";
    ctx.fillRect(i * w + 2, height - 14 - h, w - 4, h);
    ctx.fillStyle = "#9aa1ad";
    ctx.fillText(labels[i], i * w + 2, height - 2);
    if (v) ctx.fillText(String(v), i * w + 2, height - 16 - h);
  });
}

function bars(container, rows) {
  container.replaceChildren(
    ...(rows.length
      ? rows.map(([label, fraction, text, over]) => {
          const fill = el("div", { class: "fill" + (over ? " over" : "") });
          fill.style.width = Math.max(0, Math.min(1, fraction)) * 100 + "%";
          return el("div", { class: "bar" }, el("span", {}, label), el("div", { class: "track" }, fill), el("span", {}, text));
        })
      : [el("p", { class: "note" }, "none yet")])
  );
}

async function refreshMetrics() {
  const m = await api("metrics");
  state.samples.push(m);
  if (state.samples.length > 90) state.samples.shift();
  const rates = [];
  for (let i = 1; i < state.samples.length; i++) {
    const a = state.samples[i - 1];
    const b = state.samples[i];
    rates.push((b.turns_total - a.turns_total) / Math.max(b.at - a.at, 1e-3));
  }
  lineChart($("#chart-rate"), rates, "#e0a84f");
  $("#rate-now").textContent = `${(rates.at(-1) || 0).toFixed(2)} turns/s · ${m.turns_total} turns`;
  const buckets = m.ttft.buckets;
  const counts = buckets.map((b, i) => b[1] - (i ? buckets[i - 1][1] : 0));
  barChart($("#chart-ttft"), buckets.map((b) => (b[0] === "+Inf" ? "∞" : b[0] * 1000 + "")), counts);
  $("#ttft-note").textContent = m.ttft.count ? `${m.ttft.count} first tokens · mean ${((m.ttft.sum_s / m.ttft.count) * 1000).toFixed(1)} ms (bucket bounds in ms)` : "no upstream tokens yet";
  const errors = Object.entries(m.errors_by_code);
  const topError = Math.max(...errors.map((e) => e[1]), 1);
  bars($("#errors"), errors.map(([code, n]) => [code, n / topError, String(n)]));
  const headroom = [];
  for (const [model, limits] of Object.entries(m.headroom)) {
    for (const [limit, value] of Object.entries(limits)) headroom.push([`${model} ${limit}`, value, (value * 100).toFixed(0) + "%", value < 0.1]);
  }
  bars($("#headroom"), headroom);
  $("#cache").textContent = m.cache.hit_rate === null ? "no cacheable turns yet" : `${(m.cache.hit_rate * 100).toFixed(1)}% hits (${m.cache.hits} / ${m.cache.hits + m.cache.misses})`;
  lineChart($("#chart-cache"), state.samples.map((s) => s.cache.hit_rate || 0), "#6fbf73", 1);
  const spend = $("#spend");
  spend.replaceChildren();
  const days = m.spend.days;
  if (!days.length) spend.append(el("p", { class: "note" }, "nothing spent yet"));
  for (const day of days.slice(0, 2)) {
    const block = el("div", { class: "bars" });
    const rows = [[`${day.day} total`, day.limit_usd ? day.usd / day.limit_usd : 0, usd(day.usd) + (day.limit_usd ? " / $" + day.limit_usd : ""), day.limit_usd && day.usd > day.limit_usd]];
    for (const kind of ["npc", "player"]) {
      for (const row of day[kind].slice(0, 8)) {
        rows.push([`${kind} ${row.name}`, row.limit_usd ? row.usd / row.limit_usd : day.usd ? row.usd / day.usd : 0, usd(row.usd) + (row.limit_usd ? " / $" + row.limit_usd : ""), row.limit_usd && row.usd > row.limit_usd]);
      }
    }
    bars(block, rows);
    spend.append(block);
  }
  const players = new Set(days.flatMap((d) => d.player.map((r) => r.name)));
  $("#known-players").replaceChildren(...[...players].map((p) => el("option", { value: p })));
}

// ------------------------------------------------------------------ memory browser

function knownNpcs() {
  const names = new Set([...Object.keys(state.overview.npcs), ...state.defined.keys()]);
  for (const sample of state.samples.slice(-1)) for (const day of sample.spend.days) for (const row of day.npc) names.add(row.name);
  return [...names];
}

async function showMemories(event) {
  if (event) event.preventDefault();
  const player = $("#memory-player").value.trim();
  if (!player) return;
  const container = $("#memories");
  container.replaceChildren();
  let total = 0;
  for (const npc of knownNpcs()) {
    const { items } = await request({ type: "memory.query", npc, player, limit: 100 });
    if (!items.length) continue;
    total += items.length;
    container.append(
      el("h2", {}, npc),
      el("table", { class: "memory-table", dataset: { npc } },
        el("thead", {}, el("tr", {}, el("th", {}, "kind"), el("th", {}, "importance"), el("th", {}, "score"), el("th", {}, "when"), el("th", {}, "text"))),
        el("tbody", {}, items.map((m) => el("tr", {}, el("td", {}, m.kind), el("td", {}, m.importance), el("td", {}, m.score.toFixed(3)), el("td", {}, new Date(m.at * 1000).toLocaleString()), el("td", {}, m.text)))))
    );
  }
  $("#memory-status").textContent = total ? `${total} memories of ${player}.` : `No memories of ${player}.`;
}

async function forgetPlayer() {
  const player = $("#memory-player").value.trim();
  if (!player || !confirm(`Erase everything every NPC remembers of ${player}?`)) return;
  const answer = await request({ type: "memory.forget", player });
  await showMemories();
  $("#memory-status").textContent = `Forgot ${player}: ${answer.removed} records removed.`;
}

// ------------------------------------------------------------------ start

function openTab(name) {
  for (const button of document.querySelectorAll("#tabs button")) button.classList.toggle("active", button.dataset.tab === name);
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.id === name);
  if (name === "inspector") refreshTurns().catch(() => {});
  if (name === "metrics") refreshMetrics().catch(() => {});
}

async function start() {
  state.overview = await api("overview");
  const o = state.overview;
  if (o.token_required && !state.token) {
    // the admin endpoints trust this loopback page, but games' token rules apply to its socket
    showLogin("This server needs its server.token for WebSocket connections.");
    return;
  }
  $("#login").hidden = true;
  $("main").hidden = false;
  for (const select of document.querySelectorAll("select.models")) {
    select.replaceChildren(select.options[0]);
    for (const model of o.models) select.append(el("option", { value: model.id }, `${model.id}${model.tier ? " (" + model.tier + ")" : ""}`));
  }
  const pick = $("#npc-pick");
  pick.replaceChildren(pick.options[0]);
  for (const [key, persona] of Object.entries(o.npcs)) pick.append(el("option", { value: key }, `${key} — ${persona.name}`));
  $("#capture-note").textContent = o.inspector.capture_games
    ? `Keeping the last ${o.inspector.ring_size} turns of the console and of games.`
    : `Keeping the last ${o.inspector.ring_size} turns of this console (games' turns: set [extra.console] capture_games = true).`;
  await connect();
  if (state.timer) return;
  state.timer = setInterval(() => {
    if ($("#metrics").classList.contains("active")) refreshMetrics().catch(() => {});
    else if ($("#inspector").classList.contains("active")) refreshTurns().catch(() => {});
  }, 2000);
  refreshMetrics().catch(() => {});
}

function bind() {
  for (const button of document.querySelectorAll("#tabs button")) button.addEventListener("click", () => openTab(button.dataset.tab));
  $("#persona").addEventListener("submit", definePersona);
  $("#card-file").addEventListener("change", importCard);
  $("#save-toml").addEventListener("click", () => exportPersona("toml"));
  $("#save-card").addEventListener("click", () => exportPersona("card"));
  $("#npc-pick").addEventListener("change", (event) => {
    const key = event.target.value;
    if (!key) return;
    $("#npc-key").value = key;
    fillPersona(state.overview.npcs[key]);
  });
  $("#say-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const line = $("#line").value.trim();
    if (!line) return;
    $("#line").value = "";
    talk(line);
  });
  $("#regenerate").addEventListener("click", () => state.lastLine && talk(state.lastLine));
  $("#memory-form").addEventListener("submit", showMemories);
  $("#forget").addEventListener("click", () => forgetPlayer().catch((e) => ($("#memory-status").textContent = e.message)));
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("#token").value;
    sessionStorage.setItem("npcbridge.token", state.token);
    start().catch((e) => showLogin(e.message));
  });
}

bind();
start().catch((error) => {
  if (error.message !== "unauthorized") setStatus(error.message, "bad");
});
