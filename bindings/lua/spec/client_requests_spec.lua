-- The client's requests without a server (npcbridge.client_requests): failures that must reach
-- a callback, and frames fed to the client directly (the routing rule itself: flows_spec.lua).
local npcbridge = require("npcbridge")
local socket = require("socket")
local L = require("spec.live")
local S = require("spec.support")

local refused_port = L.refused_port

describe("client failures reach callbacks", function()
  it("say() while disconnected with reconnect = false calls on_error with not_connected", function()
    local c = npcbridge.new({ url = "ws://127.0.0.1:" .. refused_port() .. "/", reconnect = false })
    c:connect()
    L.pump({ c }, function() return c.state == "closed" end, 5)
    assert.are.equal("closed", c.state)
    local got
    local id, err = c:say("blacksmith", "p1", "hello?", { on_error = function(e) got = e end })
    assert.is_nil(id)
    assert.are.equal("not_connected", err.code)
    L.pump({ c }, function() return got ~= nil end, 1)
    assert.are.equal("not_connected", got and got.code)
    local general
    c.on_error = function(e) general = e end
    assert.is_nil((c:cancel("t-1")))
    L.pump({ c }, function() return general ~= nil end, 1)
    assert.are.equal("not_connected", general and general.code)
  end)

  it("an encode error reaches the request's on_error", function()
    local c = npcbridge.new({ url = "ws://127.0.0.1:" .. refused_port() .. "/", reconnect = false })
    c.state = "ready"
    c.ws = { send = function() return true end }
    local got
    local id, err = c:say("blacksmith", "p1", "\255", { on_error = function(e) got = e end })
    assert.is_nil(id)
    assert.are.equal("encode_error", err.code)
    c.ws = nil
    c.state = "closed"
    c:update()
    assert.are.equal("encode_error", got and got.code)
  end)
end)

describe("client routing of server frames", function()
  -- A client that believes it is connected; frames are handed to it as if decoded from the wire.
  local function fed_client(opts)
    local c = npcbridge.new(opts)
    c.state = "ready"
    c.ws = { send = function() return true end }
    return c
  end

  it("a refused duplicate say does not end the live reply; the refusal goes to on_error", function()
    local general, done, failed = {}, nil, nil
    local c = fed_client({ on_error = function(e) general[#general + 1] = e end })
    assert(c:say("blacksmith", "p1", "hi", { id = "t-1",
      on_done = function(r) done = r end, on_error = function(e) failed = e end }))
    local flows = S.json_file(S.vectors_dir .. "/flows.json").flows
    local flow
    for _, f in ipairs(flows) do if f.name:find("duplicate say", 1, true) then flow = f end end
    assert(flow, "the flow vector is missing")
    for _, frame in ipairs(flow.frames) do c:_on_server_message(frame) end
    assert.is_nil(failed)
    assert.are.equal("Hi", done and done.text)
    assert.are.equal(1, #general)
    assert.are.equal("bad_request", general[1].code)
  end)

  it("a refusal of the client's own fresh request ends it", function()
    local failed
    local c = fed_client()
    assert(c:say("blacksmith", "p1", "hi", { id = "t-2", on_error = function(e) failed = e end }))
    c:_on_server_message({ type = "error", id = "t-2", code = "too_many_in_flight", refused = "say",
      message = "too many requests in flight", retryable = true })
    assert.are.equal("too_many_in_flight", failed and failed.code)
    assert.is_nil(c.router:get("t-2"))
  end)
end)

describe("request timeouts", function()
  -- A connected client whose socket takes everything and reports nothing.
  local function idle_client(opts)
    local c = npcbridge.new(opts)
    c.state = "ready"
    c.ws = { send = function() return true end, update = function() return {} end }
    return c
  end

  it("request_timeout = 0 keeps the default after a frame arrives", function()
    local failed
    local c = idle_client({ request_timeout = 0 })
    assert(c:say("blacksmith", "p1", "hi", { id = "t-3", on_error = function(e) failed = e end }))
    c:_on_server_message({ type = "reply.start", id = "t-3", npc = "blacksmith", model = "m" })
    socket.select(nil, nil, 0.01)
    c:update()
    assert.is_nil(failed)
    assert.truthy(c.router:get("t-3"))
  end)

  it("request_timeout = 0 keeps the default for NPCs defined again after a reconnect", function()
    local general
    local c = idle_client({ request_timeout = 0, on_error = function(e) general = e end })
    assert(c:define_npc("blacksmith", { name = "Brom" }))
    c.router:take_all()
    c.state = "connecting" -- a new connection: welcome makes the client define Brom again
    c:_on_server_message({ type = "welcome", session = "s-2", protocol = 1 })
    socket.select(nil, nil, 0.01)
    c:update()
    assert.is_nil(general)
    local pending = 0
    for _ in pairs(c.router.requests) do pending = pending + 1 end
    assert.are.equal(1, pending) -- the npc.define sent again waits for its answer
  end)
end)
