-- Autobahn|Testsuite client driver: the npcbridge Lua WebSocket client as the client under test.
--
--   lua5.4 autobahn/echo_client.lua ws://127.0.0.1:9001 [agent]
--
-- Run from bindings/lua/ (or with package.path reaching it). Talks to a fuzzing server (Autobahn's
-- `wstest -m fuzzingserver` or `kosoku -m fuzzingserver`): asks /getCaseCount, runs every case
-- through /runCase?case=N&agent=A echoing each message back as it came (text as text, binary as
-- binary), then calls /updateReports. Prints one line per case; exits 0 when the run completed.
local here = (debug.getinfo(1, "S").source:match("^@(.*)[/\\]autobahn[/\\]") or ".")
package.path = here .. "/?.lua;" .. here .. "/?/init.lua;" .. package.path

local websocket = require("npcbridge.websocket")
local socket = require("socket")

local base_url = arg[1] or "ws://127.0.0.1:9001"
local agent = arg[2] or "npcbridge-lua"
local CASE_TIMEOUT = tonumber(os.getenv("AUTOBAHN_CASE_TIMEOUT") or "60")

-- Run one connection to completion; `on_message(ws, ev)` handles messages. Returns the close event.
local function run(url, on_message)
  local ws = websocket.new(url, { max_message = 64 * 1024 * 1024, close_timeout = 2 })
  local ok, err = ws:connect()
  if not ok then return { type = "close", error = err } end
  local deadline = socket.gettime() + CASE_TIMEOUT
  while true do
    for _, ev in ipairs(ws:update()) do
      if ev.type == "message" then
        on_message(ws, ev)
      elseif ev.type == "close" then
        return ev
      end
    end
    if socket.gettime() > deadline then
      ws:close(1000, "driver timeout")
      deadline = math.huge
    end
    socket.select(nil, nil, 0.0005)
  end
end

local count
run(base_url .. "/getCaseCount", function(_, ev) count = tonumber(ev.data) end)
if not count then
  io.stderr:write("could not read the case count\n")
  os.exit(2)
end
io.stdout:write("cases: ", count, "\n")

for i = 1, count do
  local t0 = socket.gettime()
  local ev = run(base_url .. "/runCase?case=" .. i .. "&agent=" .. agent, function(ws, m)
    ws:send(m.data, m.kind)
  end)
  io.stdout:write(string.format("case %d: close code=%s clean=%s%s (%.2fs)\n", i, tostring(ev.code),
    tostring(ev.clean), ev.error and (" error=" .. ev.error) or "", socket.gettime() - t0))
  io.stdout:flush()
end

run(base_url .. "/updateReports?agent=" .. agent, function() end)
io.stdout:write("done\n")
os.exit(0)
