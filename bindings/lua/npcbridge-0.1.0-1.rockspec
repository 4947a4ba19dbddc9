rockspec_format = "3.0"
package = "npcbridge"
version = "0.1.0-1"
-- The repository's public address is not fixed yet: replace the URL when it is published.
-- `luarocks make` in bindings/lua/ builds from the working tree and ignores it.
source = {
  url = "git+https://example.invalid/npcbridge.git",
  tag = "v0.1.0",
  dir = "npcbridge/bindings/lua",
}
description = {
  summary = "Pure-Lua client for npcbridge: streaming LLM dialogue for game NPCs",
  detailed = [[
Talks to an npcbridge server over WebSocket + msgpack. Pure Lua (5.1 to 5.4, LuaJIT, LÖVE 11):
a msgpack codec, an RFC 6455 WebSocket client over LuaSocket (non-blocking, update() per frame;
wss:// through LuaSec when installed), and the npcbridge protocol client (say with streaming
callbacks, cancel, NPC definitions, memory, quests, barks, reconnect with backoff).
]],
  license = "MIT",
  labels = { "gamedev", "love2d", "websocket", "msgpack", "llm" },
}
dependencies = {
  "lua >= 5.1, < 5.5",
  "luasocket >= 3.0rc1",
  -- optional: "luasec" for wss:// (feature-detected at run time)
}
test_dependencies = {
  "busted >= 2.0",
}
test = {
  type = "busted",
}
build = {
  type = "builtin",
  modules = {
    ["npcbridge"] = "npcbridge/init.lua",
    ["npcbridge.errors"] = "npcbridge/errors.lua",
    ["npcbridge.client_connection"] = "npcbridge/client_connection.lua",
    ["npcbridge.client_requests"] = "npcbridge/client_requests.lua",
    ["npcbridge.client_api"] = "npcbridge/client_api.lua",
    ["npcbridge.client_voice"] = "npcbridge/client_voice.lua",
    ["npcbridge.voice"] = "npcbridge/voice.lua",
    ["npcbridge.love_voice"] = "npcbridge/love_voice.lua",
    ["npcbridge.memory"] = "npcbridge/memory.lua",
    ["npcbridge.state"] = "npcbridge/state.lua",
    ["npcbridge.url"] = "npcbridge/url.lua",
    ["npcbridge.msgpack"] = "npcbridge/msgpack.lua",
    ["npcbridge.msgpack_types"] = "npcbridge/msgpack_types.lua",
    ["npcbridge.msgpack_numbers"] = "npcbridge/msgpack_numbers.lua",
    ["npcbridge.msgpack_encode"] = "npcbridge/msgpack_encode.lua",
    ["npcbridge.msgpack_decode"] = "npcbridge/msgpack_decode.lua",
    ["npcbridge.sha1"] = "npcbridge/sha1.lua",
    ["npcbridge.base64"] = "npcbridge/base64.lua",
    ["npcbridge.wsproto"] = "npcbridge/wsproto.lua",
    ["npcbridge.wsproto_frame"] = "npcbridge/wsproto_frame.lua",
    ["npcbridge.wsproto_close"] = "npcbridge/wsproto_close.lua",
    ["npcbridge.wsproto_handshake"] = "npcbridge/wsproto_handshake.lua",
    ["npcbridge.websocket"] = "npcbridge/websocket.lua",
    ["npcbridge.tcp"] = "npcbridge/tcp.lua",
    ["npcbridge.utf8scan"] = "npcbridge/utf8scan.lua",
    ["npcbridge.random"] = "npcbridge/random.lua",
    ["npcbridge.router"] = "npcbridge/router.lua",
  },
  copy_directories = { "spec" },
}
