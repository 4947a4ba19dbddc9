--- Random bytes for the WebSocket handshake key (RFC 6455 section 4.1) and for every frame mask
--- (section 5.3), which must be unpredictable to whoever controls the data being sent; the
--- client's reconnect jitter draws from it too.
---
--- The best source the platform offers, chosen once when the module loads (`M.source`):
---   "urandom"  /dev/urandom (Linux, macOS, the BSDs; LÖVE on those too)
---   "bcrypt"   Windows under LuaJIT (LÖVE): BCryptGenRandom through the FFI, the system CSPRNG
---   "pool"     anything else (plain Lua on Windows): a SHA-1 entropy pool, see `new_pool`
--- It never calls math.random or love.math.random: the game's generators are neither reseeded
--- nor advanced, so a game that seeds them for reproducible runs keeps its sequences.
---@class npcbridge.random
local M = { _VERSION = "0.1.0" }

local base = (...) and (...):match("^(.-)[^%.]+$") or ""
local sha1 = require(base .. "sha1")

local sub, concat, tostring = string.sub, table.concat, tostring

-- Read from an open file of random bytes, 4 KiB at a time.
local function file_source(f)
  local buffer, at = "", 1
  return function(n)
    if at + n - 1 > #buffer then
      buffer, at = (f:read(4096) or ""), 1
      if #buffer < n then return nil end
    end
    local s = sub(buffer, at, at + n - 1)
    at = at + n
    return s
  end
end

-- BCryptGenRandom (bcrypt.dll, Windows Vista and later) with the system-preferred generator.
local function bcrypt_source()
  if not rawget(_G, "jit") then return nil end
  local ok, ffi = pcall(require, "ffi")
  if not ok or ffi.os ~= "Windows" then return nil end
  local lib
  ok = pcall(function()
    ffi.cdef("long __stdcall BCryptGenRandom(void *alg, unsigned char *buf, unsigned long n, unsigned long flags);")
    lib = ffi.load("bcrypt")
  end)
  if not ok or not lib then return nil end
  local BCRYPT_USE_SYSTEM_PREFERRED_RNG = 2
  return function(n)
    local buf = ffi.new("unsigned char[?]", n)
    if lib.BCryptGenRandom(nil, buf, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) ~= 0 then return nil end
    return ffi.string(buf, n)
  end
end

-- What differs between two runs started at the same moment: high-resolution clocks, addresses
-- of fresh objects (randomised by ASLR on current systems), the heap's size, and the jitter of
-- counting loop turns until the CPU clock ticks.
local function gather()
  local parts = { tostring(os.time()), tostring(os.clock()), tostring({}), tostring(print),
    tostring(function() end), tostring(coroutine.create(function() end)),
    tostring(collectgarbage("count")) }
  local ok, socket = pcall(require, "socket")
  if ok and type(socket) == "table" and socket.gettime then parts[#parts + 1] = tostring(socket.gettime()) end
  local love = rawget(_G, "love")
  if love and love.timer and love.timer.getTime then parts[#parts + 1] = tostring(love.timer.getTime()) end
  for _, name in ipairs({ "COMPUTERNAME", "USERNAME", "HOSTNAME", "PROCESSOR_IDENTIFIER", "PWD" }) do
    parts[#parts + 1] = os.getenv(name) or ""
  end
  for _ = 1, 4 do
    local t0, turns = os.clock(), 0
    while os.clock() == t0 and turns < 100000 do turns = turns + 1 end
    parts[#parts + 1] = tostring(turns)
  end
  return concat(parts, "\0")
end

--- A generator of random bytes that needs no system source: its state is the SHA-1 of what
--- `gather` found at creation; each draw hashes the state with a counter for the output and
--- stirs the state with the counter and the clocks of that moment. As unpredictable as the
--- gathered entropy is, which is much weaker than a system CSPRNG but never a clock alone.
---@return fun(n: integer): string
function M.new_pool()
  local state, counter, ready = sha1.digest(gather()), 0, ""
  local clock = function() return tostring(os.clock()) end
  local ok, socket = pcall(require, "socket")
  if ok and type(socket) == "table" and socket.gettime then
    clock = function() return tostring(socket.gettime()) .. tostring(os.clock()) end
  end
  return function(n)
    while #ready < n do
      counter = counter + 1
      ready = ready .. sha1.digest("out\0" .. state .. counter)
      state = sha1.digest("stir\0" .. state .. counter .. clock())
    end
    local s = sub(ready, 1, n)
    ready = sub(ready, n + 1)
    return s
  end
end

local system
do
  local f = io and io.open and io.open("/dev/urandom", "rb")
  if f then
    system, M.source = file_source(f), "urandom"
  else
    system = bcrypt_source()
    M.source = system and "bcrypt" or "pool"
  end
end
local pool

--- `n` random bytes from the best source (`M.source`); the pool takes over if a system source
--- ever fails to deliver.
---@param n integer
---@return string
function M.bytes(n)
  local s = system and system(n)
  if s and #s == n then return s end
  pool = pool or M.new_pool()
  return pool(n)
end

return M
