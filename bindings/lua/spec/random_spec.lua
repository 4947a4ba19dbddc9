-- Where handshake keys and frame masks come from (RFC 6455 4.1, 5.3): the system's source,
-- else an entropy pool; never the game's math.random / love.math.random.

-- Load the modules named afresh with /dev/urandom unreadable (as on Windows), then restore
-- everything. Returns the fresh npcbridge.random, then the modules in the order named.
local function load_without_urandom(...)
  local names, saved_open, saved = { ... }, io.open, {}
  for _, m in ipairs({ "npcbridge.random", "npcbridge.wsproto", "npcbridge.wsproto_handshake", ... }) do
    saved[m], package.loaded[m] = package.loaded[m], nil
  end
  io.open = function(path, ...)
    if path == "/dev/urandom" then return nil, "no such file" end
    return saved_open(path, ...)
  end
  local mods, ok, err = {}, true, nil
  for i, name in ipairs(names) do
    ok, mods[i] = pcall(require, name)
    if not ok then err = mods[i]; break end
  end
  io.open = saved_open
  local random = package.loaded["npcbridge.random"]
  for m, v in pairs(saved) do package.loaded[m] = v end
  assert(ok, err)
  return random, (unpack or table.unpack)(mods, 1, #names)
end

-- Run fn with the game's generators replaced by ones that fail the spec when touched.
local function without_game_rng(fn)
  local r, seed = math.random, math.randomseed
  local love = rawget(_G, "love")
  local lm = love and love.math and love.math.random
  local touched = false
  math.random = function(...) touched = true; return r(...) end
  math.randomseed = function(...) touched = true; return seed(...) end
  if lm then love.math.random = function(...) touched = true; return lm(...) end end
  local ok, err = pcall(fn)
  math.random, math.randomseed = r, seed
  if lm then love.math.random = lm end
  assert(ok, err)
  assert.is_false(touched, "the game's random generator was used")
end

describe("random bytes", function()
  it("come from /dev/urandom where it exists", function()
    local random = require("npcbridge.random")
    assert.are.equal("urandom", random.source)
    without_game_rng(function() assert.are.equal(16, #random.bytes(16)) end)
  end)

  it("never touch the game's generator without /dev/urandom (masks and keys)", function()
    local random, wsproto, handshake = load_without_urandom("npcbridge.wsproto", "npcbridge.wsproto_handshake")
    assert.are.equal("pool", random.source)
    without_game_rng(function()
      local keys = {}
      for i = 1, 20 do
        keys[i] = handshake.new_key()
        assert.are.equal(24, #keys[i])
        for j = 1, i - 1 do assert.are_not.equal(keys[j], keys[i]) end
      end
      local p = wsproto.new()
      p:send_message("same")
      p:send_message("same")
      local bytes = p:data_to_send()
      assert.are_not.equal(bytes:sub(1, #bytes / 2), bytes:sub(#bytes / 2 + 1))
    end)
  end)

  it("reconnect delays leave a seeded game sequence intact", function()
    local L = require("spec.live")
    local c = require("npcbridge").new({ url = "ws://127.0.0.1:" .. L.refused_port() .. "/",
      reconnect_initial = 0.01, reconnect_max = 0.02 })
    math.randomseed(1234)
    local a = { math.random(1, 1000), math.random(1, 1000) }
    math.randomseed(1234)
    math.random(1, 1000)
    without_game_rng(function()
      assert(c:connect())
      L.pump({ c }, function() return c.attempts >= 3 end, 5)
    end)
    c:close()
    assert.is_true(c.attempts >= 3, "it did not reconnect")
    assert.are.equal(a[2], math.random(1, 1000))
  end)

  it("keeps a seeded game sequence intact", function()
    local random = load_without_urandom("npcbridge.random")
    math.randomseed(1234)
    local a = { math.random(1, 1000), math.random(1, 1000) }
    math.randomseed(1234)
    math.random(1, 1000)
    random.bytes(64)
    assert.are.equal(a[2], math.random(1, 1000))
  end)

  it("gives two pools created at the same moment different bytes", function()
    local random = require("npcbridge.random")
    local a, b = random.new_pool(), random.new_pool()
    assert.are_not.equal(a(16), b(16))
    local seen = {}
    for _ = 1, 50 do
      local s = a(4)
      assert.are.equal(4, #s)
      assert.is_nil(seen[s])
      seen[s] = true
    end
  end)
end)
