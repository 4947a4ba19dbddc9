// Talking to the NPC: one say per model column (two when comparing), the reply streamed in
// with its emotes and actions, its figures and a link to its record in the inspector.
import { $, el, ms, usd } from "./dom.js";
import { inspectRequest } from "./inspector.js";
import { float } from "./msgpack.js";
import { npcKey, onWire } from "./persona.js";
import { request, say } from "./server.js";
import { shared } from "./shared.js";

let lastLine = null;

// the NPC key that answers with `model`: the NPC itself, or a variant `<npc>@<model>` defined
// on this connection with that model (the protocol has no per-line model)
async function npcFor(model) {
  const key = npcKey();
  const base = shared.defined.get(key) || shared.overview.npcs[key];
  if (!base) throw new Error("Define the NPC first (or pick one from the config).");
  if (!model) return key;
  const variant = `${key}@${model}`;
  if (!shared.defined.has(variant)) {
    const persona = Object.assign({}, base, { model });
    await request({ type: "npc.define", npc: variant, persona: onWire(persona) });
    shared.defined.set(variant, persona);
  }
  return variant;
}

function replyBox(label) {
  const text = el("div", { class: "text" });
  const extras = el("div");
  const meta = el("div", { class: "meta" });
  const who = el("div", { class: "who" }, label);
  const box = el("div", { class: "reply streaming" }, who, text, extras, meta);
  return { box, who, text, extras, meta };
}

async function talkOnce(line, model, view) {
  const npc = await npcFor(model);
  const message = { npc, player: $("#player").value.trim() || "console", text: line, urgency: $("#urgency").value };
  const temperature = $("#line-temperature").value;
  if (temperature !== "") message.temperature = float(temperature);
  const end = await say(message, (frame) => {
    if (frame.type === "reply.start") view.who.textContent = `${npc} · ${frame.model}`;
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
    `${end.model} · ${end.finish} · ${usage.input_tokens}→${usage.output_tokens} tokens · ${usd(end.cost_usd)} · ` +
      `TTFT ${ms(end.timing.ttft_ms)} · total ${ms(end.timing.total_ms)} · `,
    el("a", { class: "inspect", onclick: () => inspectRequest(end.id) }, "inspect")
  );
}

export async function talk(line) {
  lastLine = line;
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

export const regenerate = () => lastLine && talk(lastLine);
