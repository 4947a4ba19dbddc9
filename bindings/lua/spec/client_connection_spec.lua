-- The client's connection without a server: URLs that can never work and names that do not
-- resolve reach on_error without retries; the one DNS lookup (npcbridge.client_connection).
local npcbridge = require("npcbridge")
local socket = require("socket")
local L = require("spec.live")

local refused_port = L.refused_port

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
