// The npcbridge console page: it speaks the game protocol (msgpack over WebSocket, server.js)
// for everything a game can do — define NPCs, talk, read and forget memories — and reads the
// admin endpoints under /console/api/ for what a game never needs (turn records, metrics).
// ES modules, no framework, no build step.
import { $, el, isOpen, onOpen, openTab } from "./dom.js";
import { refreshTurns } from "./inspector.js";
import { forgetPlayer, showMemories } from "./memory.js";
import { refreshMetrics } from "./metrics.js";
import { definePersona, exportPersona, importCard, pickConfigNpc } from "./persona.js";
import { api, connect, server, setStatus, setToken, showLogin } from "./server.js";
import { shared } from "./shared.js";
import { regenerate, talk } from "./talk.js";

const REFRESH_MS = 2000;
let timer = null;

function fillChoices(overview) {
  for (const select of document.querySelectorAll("select.models")) {
    select.replaceChildren(select.options[0]);
    for (const model of overview.models) select.append(el("option", { value: model.id }, `${model.id}${model.tier ? " (" + model.tier + ")" : ""}`));
  }
  const pick = $("#npc-pick");
  pick.replaceChildren(pick.options[0]);
  for (const [key, persona] of Object.entries(overview.npcs)) pick.append(el("option", { value: key }, `${key} — ${persona.name}`));
  const { capture_games: games, ring_size: size } = overview.inspector;
  $("#capture-note").textContent = games
    ? `Keeping the last ${size} turns of the console and of games.`
    : `Keeping the last ${size} turns of this console (games' turns: set [extra.console] capture_games = true).`;
}

async function start() {
  const overview = (shared.overview = await api("overview"));
  if (overview.token_required && !server.token) {
    // the admin endpoints trust this loopback page, but games' token rules apply to its socket
    showLogin("This server needs its server.token for WebSocket connections.");
    return;
  }
  $("#login").hidden = true;
  $("main").hidden = false;
  fillChoices(overview);
  await connect();
  if (timer) return;
  timer = setInterval(() => {
    if (isOpen("metrics")) refreshMetrics().catch(() => {});
    else if (isOpen("inspector")) refreshTurns().catch(() => {});
  }, REFRESH_MS);
  refreshMetrics().catch(() => {});
}

function bind() {
  onOpen("inspector", refreshTurns);
  onOpen("metrics", refreshMetrics);
  for (const button of document.querySelectorAll("#tabs button")) button.addEventListener("click", () => openTab(button.dataset.tab));
  $("#persona").addEventListener("submit", definePersona);
  $("#card-file").addEventListener("change", importCard);
  $("#save-toml").addEventListener("click", () => exportPersona("toml"));
  $("#save-card").addEventListener("click", () => exportPersona("card"));
  $("#npc-pick").addEventListener("change", pickConfigNpc);
  $("#say-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const line = $("#line").value.trim();
    if (!line) return;
    $("#line").value = "";
    talk(line);
  });
  $("#regenerate").addEventListener("click", regenerate);
  $("#memory-form").addEventListener("submit", showMemories);
  $("#forget").addEventListener("click", () => forgetPlayer().catch((e) => ($("#memory-status").textContent = e.message)));
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setToken($("#token").value);
    start().catch((e) => showLogin(e.message));
  });
}

bind();
start().catch((error) => {
  if (error.message !== "unauthorized") setStatus(error.message, "bad");
});
