// The console's two ways to the server: the admin endpoints under /console/api/ (fetch, with
// the token when there is one) and the game protocol over WebSocket (msgpack), exactly as a
// game speaks it.
import { $ } from "./dom.js";
import { decode, encode } from "./msgpack.js";

export const server = {
  token: sessionStorage.getItem("npcbridge.token") || "",
  ws: null,
  welcome: null,
  pending: new Map(),
  nextId: 1,
  onLogin: () => {},
};

export function setToken(token) {
  server.token = token;
  sessionStorage.setItem("npcbridge.token", token);
}

export function showLogin(message) {
  $("#login").hidden = false;
  $("main").hidden = true;
  $("#login-error").textContent = message;
}

export function setStatus(text, kind) {
  const status = $("#status");
  status.textContent = text;
  status.className = "status " + (kind || "");
}

// an admin endpoint's answer (JSON, or text for the TOML export); 401 asks for the token
export async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (server.token) headers.Authorization = "Bearer " + server.token;
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

export const postJson = (path, body) =>
  api(path, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });

// open the WebSocket: hello, welcome, then x.console.attach (this connection's turns are the
// console's, kept by the inspector)
export function connect() {
  return new Promise((resolve, reject) => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/`);
    ws.binaryType = "arraybuffer";
    server.ws = ws;
    ws.onopen = () => {
      const hello = { type: "hello", protocol: 1, client: "npcbridge-console/0.1" };
      if (server.token) hello.token = server.token;
      ws.send(encode(hello));
    };
    ws.onmessage = (event) => {
      const frame = decode(event.data);
      if (frame.type === "welcome") {
        setStatus(`${frame.server} · session ${frame.session}`, "ok");
        server.welcome = frame;
        request({ type: "x.console.attach" }).then(() => resolve(frame), reject);
        return;
      }
      const handler = server.pending.get(frame.id);
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

const newId = () => "c-" + server.nextId++;

// one request answered by one frame (ok, memory); an error frame rejects
export function request(message) {
  const id = newId();
  return new Promise((resolve, reject) => {
    server.pending.set(id, (frame) => {
      server.pending.delete(id);
      if (frame.type === "error") reject(new Error(frame.message));
      else resolve(frame);
    });
    server.ws.send(encode(Object.assign({ id }, message)));
  });
}

// a say: every frame of its reply goes to onFrame; resolves with reply.end or the error
export function say(message, onFrame) {
  const id = newId();
  return new Promise((resolve) => {
    server.pending.set(id, (frame) => {
      onFrame(frame);
      if (frame.type === "reply.end" || frame.type === "error") {
        server.pending.delete(id);
        resolve(frame);
      }
    });
    server.ws.send(encode(Object.assign({ type: "say", id }, message)));
  });
}
