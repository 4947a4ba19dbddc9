// The inspector: the kept turn records (GET /console/api/turns) and one record whole: what went
// upstream (prompt parts by plugin, memories, model and its rule, tools, messages), what came
// back, finish, tokens, cost, timing, attempts.
import { $, el, ms, openTab, usd } from "./dom.js";
import { api } from "./server.js";

let selected = null;

export async function refreshTurns() {
  const { turns } = await api("turns");
  $("#turns tbody").replaceChildren(
    ...turns.map((t) =>
      el(
        "tr",
        { dataset: { id: t.id, requestId: t.request_id }, class: selected === t.id ? "selected" : "", onclick: () => showTurn(t.id) },
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

// open the record of the request `requestId` (it is kept once its after-turn hooks ran)
export async function inspectRequest(requestId) {
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

function memoriesTable(memories) {
  if (!memories.length) return el("p", { class: "note" }, "none");
  const head = el("tr", {}, ["score", "kind", "importance", "text"].map((h) => el("th", {}, h)));
  const rows = memories.map((m) => el("tr", {}, el("td", {}, m.score.toFixed(3)), el("td", {}, m.kind), el("td", {}, m.importance), el("td", {}, m.text)));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, rows));
}

export async function showTurn(id) {
  selected = id;
  const t = await api("turns/" + id);
  const steps = t.steps.length ? t.steps.map((s) => `${s.model}: ${s.outcome}${s.reason ? " (" + s.reason + ")" : ""}`).join(" → ") : "—";
  const usage = `${t.usage.input_tokens} in, ${t.usage.output_tokens} out${t.usage.estimated ? " (estimated)" : ""}`;
  $("#turn-detail").replaceChildren(
    el("h2", {}, `Turn ${t.id} · ${t.npc} ↔ ${t.player} · ${t.source}`),
    kv([
      ["request", t.request_id],
      ["kind / urgency", `${t.kind} / ${t.urgency}`],
      ["model chosen", t.model.chosen, "detail-model"],
      ["chosen by", `${t.model.plugin || "default model"}${t.model.rule ? ": " + t.model.rule : ""}`, "detail-rule"],
      ["served by", t.model.served],
      ["attempts", steps, "detail-steps"],
      ["finish", t.finish + (t.error_code ? ` (${t.error_code})` : "") + (t.cached ? " · cached" : ""), "detail-finish"],
      ["tokens", usage, "detail-tokens"],
      ["cost", usd(t.cost_usd), "detail-cost"],
      ["timing", `queue ${ms(t.timing.queue_ms)} · TTFT ${ms(t.timing.ttft_ms)} · total ${ms(t.timing.total_ms)}`, "detail-timing"],
    ]),
    el("h2", {}, "System prompt"),
    el("div", { id: "detail-prompt" }, t.prompt.parts.map((p) => el("div", { class: "part" }, el("div", { class: "plugin" }, `${p.plugin} · ${p.stage}`), el("pre", {}, p.text)))),
    el("h2", {}, "Recalled memories"),
    memoriesTable(t.memories),
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
