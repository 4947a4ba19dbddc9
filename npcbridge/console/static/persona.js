// The persona form: reading and filling every persona field, defining the NPC on this
// connection, Character Card V2 import by file (JSON or PNG) and saving as TOML or a card.
import { $, el, showStatus } from "./dom.js";
import { float } from "./msgpack.js";
import { postJson, request } from "./server.js";
import { shared } from "./shared.js";

const LIST_FIELDS = ["knowledge", "examples"];
const COMMA_FIELDS = ["topics", "fallbacks"];
const NUMBER_FIELDS = ["temperature", "max_tokens", "latency_budget_ms", "budget_usd_per_day"];
const BOOL_FIELDS = ["quality", "cacheable"];
const TEXT_FIELDS = ["name", "description", "personality", "speech_style", "system_prompt", "model", "tier"];

export const npcKey = () => $("#npc-key").value.trim();

// the persona as npc.define carries it: its temperature always a float64, as the protocol wants
export const onWire = (persona) =>
  persona.temperature === undefined ? persona : Object.assign({}, persona, { temperature: float(persona.temperature) });

export function readPersona() {
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

export function fillPersona(persona) {
  const form = $("#persona");
  for (const name of TEXT_FIELDS) form.elements[name].value = persona[name] ?? "";
  for (const name of LIST_FIELDS) form.elements[name].value = (persona[name] || []).join("\n");
  for (const name of COMMA_FIELDS) form.elements[name].value = (persona[name] || []).join(", ");
  for (const name of NUMBER_FIELDS) form.elements[name].value = persona[name] ?? "";
  for (const name of BOOL_FIELDS) form.elements[name].checked = Boolean(persona[name]);
  form.elements.actions.value = persona.actions ? JSON.stringify(persona.actions, null, 1) : "";
}

export async function definePersona(event) {
  event.preventDefault();
  const status = $("#persona-status");
  try {
    const key = npcKey();
    const persona = readPersona();
    await request({ type: "npc.define", npc: key, persona: onWire(persona) });
    shared.defined.set(key, persona);
    // variants for other models were made from the old persona: make them again when needed
    for (const variant of [...shared.defined.keys()]) {
      if (variant.startsWith(key + "@")) shared.defined.delete(variant);
    }
    showStatus(status, `Defined ${key} on this connection.`);
  } catch (error) {
    showStatus(status, error.message, "error");
  }
}

// the card in a file: JSON, or a PNG whose tEXt chunk "chara" (or "ccv3") holds base64 JSON
async function readCard(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (bytes[0] !== 0x89 || bytes[1] !== 0x50) return JSON.parse(new TextDecoder().decode(bytes));
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

export async function importCard(event) {
  const status = $("#persona-status");
  try {
    const card = await readCard(event.target.files[0]);
    // the server's own mapping, the one npc.define with a card uses
    const { persona } = await postJson("card", card);
    fillPersona(persona);
    $("#npc-key").value = persona.name.toLowerCase().replace(/[^a-z0-9_-]+/g, "_");
    showStatus(status, `Imported ${persona.name}; press Define NPC to use it.`);
  } catch (error) {
    showStatus(status, "Card import: " + error.message, "error");
  }
}

export async function exportPersona(format) {
  const status = $("#persona-status");
  try {
    const key = npcKey();
    const out = await postJson("export?format=" + format, { npc: key, persona: readPersona() });
    const text = format === "card" ? JSON.stringify(out, null, 2) : out;
    const pre = $("#export-out");
    pre.hidden = false;
    pre.textContent = text;
    const blob = new Blob([text], { type: format === "card" ? "application/json" : "application/toml" });
    const name = format === "card" ? `${key}.card.json` : `${key}.toml`;
    el("a", { href: URL.createObjectURL(blob), download: name }).click();
    showStatus(status, format === "card" ? "Saved as a Character Card V2." : "Saved as a [npcs.*] table.");
  } catch (error) {
    showStatus(status, error.message, "error");
  }
}

export function pickConfigNpc(event) {
  const key = event.target.value;
  if (!key) return;
  $("#npc-key").value = key;
  fillPersona(shared.overview.npcs[key]);
}
