-- npcbridge: NPC dialogue from an npcbridge server, over its HTTP transport (the only network
-- access a Luanti mod has: minetest.request_http_api, for mods listed in secure.http_mods).
local modname = minetest.get_current_modname()
local modpath = minetest.get_modpath(modname)
local VERSION = "0.1.0"

local function load(file, ...)
  return assert(loadfile(modpath .. "/" .. file .. ".lua"))(...)
end

-- what an admin should see: to each player online with the server privilege
local function tell_admins(text)
  for _, player in ipairs(minetest.get_connected_players()) do
    local name = player:get_player_name()
    if minetest.check_player_privs(name, { server = true }) then
      minetest.chat_send_player(name, "[npcbridge] " .. text)
    end
  end
end

-- errors (server unreachable, session refused) also reach the admins' chat
local function log(level, text)
  minetest.log(level, "[npcbridge] " .. text)
  if level == "error" then
    tell_admins(text)
  end
end

-- a game callback that raises is logged; it never stops the mod (or the server)
local function guard(fn, ...)
  if not fn then
    return
  end
  local ok, err = pcall(fn, ...)
  if not ok then
    log("error", "a callback failed: " .. tostring(err))
  end
end

-- only from the mod's load time, and only when the mod is listed in secure.http_mods
local http = minetest.request_http_api and minetest.request_http_api()

local settings = minetest.settings
local url = (settings:get("npcbridge.url") or "http://127.0.0.1:8765"):gsub("/+$", "")
local token = settings:get("npcbridge.token")
local poll_wait_s = math.max(1, math.min(30, tonumber(settings:get("npcbridge.poll_wait")) or 20))

local json = load("json", load("msgpack_types"))
local Transport = load("transport", json)
local Requests = load("requests", load("router"), load("errors"))
local Session = load("session", Requests)
local API = load("api", Requests)

-- why the mod cannot talk at all ({code, message}), or nil
local disabled
if not http then
  disabled = { code = "http_disabled", message = "HTTP is not allowed for the npcbridge mod: "
    .. "add npcbridge to secure.http_mods in minetest.conf (NPCs stay silent until then)" }
elseif not url:match("^https?://[^/]") then
  disabled = { code = "bad_url", message = "npcbridge.url must start with http:// or https:// "
    .. "(like http://127.0.0.1:8765)" }
end
if disabled then
  log("error", disabled.message)
end

local requests = Requests.new(guard, nil)
local transport = http and Transport.new(http, minetest.parse_json, url, token)
local session = Session.new(transport, {
  url = url, client = "luanti/" .. (minetest.get_version().string or "?") .. " npcbridge-luanti/"
    .. VERSION, poll_wait_s = poll_wait_s, log = log, after = minetest.after,
  requests = requests,
})

npcbridge = { VERSION = VERSION }
requests.on_general_error = API.install(npcbridge, session, requests, disabled, minetest.after)

--- JSON text of `value` as the server reads it: integral numbers stay integers (except the
--- protocol's float fields), an empty table is `{}`; nil and a reason when it cannot be JSON.
npcbridge.encode_json = json.encode

local display = load("display")
--- Callbacks that show the reply of `speaker` to the player `name` (HUD, then chat).
npcbridge.show_reply = display.reply_callbacks

load("chat", npcbridge, display)
if settings:get_bool("npcbridge.example_npc", true) then
  load("entity", npcbridge, display)
end

if disabled then
  -- say it where an admin looks: to each player with the server privilege as they join
  minetest.register_on_joinplayer(function(player)
    local name = player:get_player_name()
    if minetest.check_player_privs(name, { server = true }) then
      minetest.chat_send_player(name, "[npcbridge] " .. disabled.message)
    end
  end)
else
  minetest.register_globalstep(function()
    transport:step()
  end)
  minetest.register_on_shutdown(function()
    session:close()
  end)
  -- open the session once the server runs, so the first line said finds it ready
  minetest.after(0, function()
    session:start()
  end)
  log("action", "talking to " .. url)
end
