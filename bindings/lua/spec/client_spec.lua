-- The protocol client without a server: failures that must reach a callback, the one DNS
-- lookup, and frames fed to it directly (the routing itself: flows_spec.lua).
local npcbridge = require("npcbridge")
local socket = require("socket")
local L = require("spec.live")
local S = require("spec.support")

-- A loopback port nothing listens on (bound by the OS, then released).
local function refused_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

describe("client failures reach callbacks", function()
  for _, url in ipairs({ "http://127.0.0.1:8765/", "127.0.0.1:8765", "ws://" }) do
    it("a URL that can never work (" .. url .. ") reaches on_error and is not retried", function()
      local errors, say_err = {}, nil
      local c = npcbridge.new({ url = url, reconnect_initial = 0.01,
        on_error = function(e) errors[#errors + 1] = e end })
      c:say("blacksmith", "p1", "hello?", { on_error = function(e) say_err = e end }) -- queued
      local ok, err = c:connect()
      assert.is_nil(ok)
      assert.are.equal("bad_url", err.code)
      assert.is_false(err.retryable)
      assert.are.equal(0, #errors) -- callbacks run from update(), not inside connect()
      L.pump({ c }, function() return false end, 0.1)
      assert.are.equal(1, #errors)
      assert.are.equal("bad_url", errors[1].code)
      assert.are.equal("bad_url", say_err and say_err.code)
      assert.are.equal("closed", c.state)
      assert.is_nil(c.ws)
      assert.is_nil(c.reconnect_at)
    end)
  end

  it("wss:// without LuaSec is a bad_url, not retried", function()
    local saved, saved_preload = package.loaded.ssl, package.preload.ssl
    package.loaded.ssl, package.preload.ssl = nil, function() error("no LuaSec here") end
    local got
    local c = npcbridge.new({ url = "wss://127.0.0.1:1/", on_error = function(e) got = e end })
    local ok, err = c:connect()
    package.loaded.ssl, package.preload.ssl = saved, saved_preload
    assert.is_nil(ok)
    assert.are.equal("bad_url", err.code)
    assert.truthy(err.message:find("LuaSec", 1, true))
    c:update()
    assert.are.equal("bad_url", got and got.code)
    assert.are.equal("closed", c.state)
  end)

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

describe("host name lookup", function()
  it("happens once, in connect(); reconnects go to the resolved address", function()
    local port = refused_port()
    local dns = socket.dns
    local saved_getaddrinfo, saved_toip = dns.getaddrinfo, dns.toip
    local lookups = 0
    dns.getaddrinfo = function(host)
      lookups = lookups + 1
      assert.are.equal("npc.example", host)
      return { { family = "inet", addr = "127.0.0.1" } }
    end
    dns.toip = function() lookups = lookups + 1; return "127.0.0.1" end
    local c = npcbridge.new({ url = "ws://npc.example:" .. port .. "/", reconnect_initial = 0.01,
      reconnect_max = 0.02 })
    local ok, err = pcall(function()
      assert(c:connect())
      L.pump({ c }, function() return c.attempts >= 3 end, 5)
    end)
    dns.getaddrinfo, dns.toip = saved_getaddrinfo, saved_toip
    c:close()
    assert(ok, err)
    assert.is_true(c.attempts >= 3, "it did not reconnect")
    assert.are.equal(1, lookups)
    assert.are.equal("127.0.0.1", c.address)
  end)

  it("a name that does not resolve reaches on_error as resolve_failed", function()
    local dns = socket.dns
    local saved_getaddrinfo, saved_toip = dns.getaddrinfo, dns.toip
    dns.getaddrinfo = function() return nil, "host not found" end
    dns.toip = function() return nil, "host not found" end
    local got
    local c = npcbridge.new({ url = "ws://nowhere.example/", on_error = function(e) got = e end })
    local ok, err = c:connect()
    dns.getaddrinfo, dns.toip = saved_getaddrinfo, saved_toip
    assert.is_nil(ok)
    assert.are.equal("resolve_failed", err.code)
    c:update()
    assert.are.equal("resolve_failed", got and got.code)
    assert.are.equal("closed", c.state)
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
