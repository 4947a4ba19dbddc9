// The memory browser: a player's memories per NPC (memory.query, as a game asks) and forgetting
// the player everywhere (memory.forget without npc: the same erasure a game asks for).
import { $, el } from "./dom.js";
import { request } from "./server.js";
import { shared } from "./shared.js";

// the NPCs to ask: the config's, the ones defined on this connection, the ones that spent
function knownNpcs() {
  const names = new Set([...Object.keys(shared.overview.npcs), ...shared.defined.keys()]);
  for (const sample of shared.samples.slice(-1)) for (const day of sample.spend.days) for (const row of day.npc) names.add(row.name);
  return [...names];
}

function memoryTable(npc, items) {
  const head = el("tr", {}, ["kind", "importance", "score", "when", "text"].map((h) => el("th", {}, h)));
  const rows = items.map((m) =>
    el("tr", {}, el("td", {}, m.kind), el("td", {}, m.importance), el("td", {}, m.score.toFixed(3)), el("td", {}, new Date(m.at * 1000).toLocaleString()), el("td", {}, m.text))
  );
  return el("table", { class: "memory-table", dataset: { npc } }, el("thead", {}, head), el("tbody", {}, rows));
}

export async function showMemories(event) {
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
    container.append(el("h2", {}, npc), memoryTable(npc, items));
  }
  $("#memory-status").textContent = total ? `${total} memories of ${player}.` : `No memories of ${player}.`;
}

export async function forgetPlayer() {
  const player = $("#memory-player").value.trim();
  if (!player || !confirm(`Erase everything every NPC remembers of ${player}?`)) return;
  const answer = await request({ type: "memory.forget", player });
  await showMemories();
  $("#memory-status").textContent = `Forgot ${player}: ${answer.removed} records removed.`;
}
