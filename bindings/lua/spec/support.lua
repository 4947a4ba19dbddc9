-- Helpers shared by the specs: file reading, hex, a small JSON reader that keeps integers and
-- floats apart (for the tagged JSON of tests/vectors/), and deep comparison of decoded values.
local msgpack = require("npcbridge.msgpack")

local S = {}

local here = debug.getinfo(1, "S").source:match("^@(.*)$") or "spec/support.lua"
S.spec_dir = here:match("^(.*)[/\\][^/\\]*$") or "."
S.lua_root = S.spec_dir .. "/.."
S.vectors_dir = os.getenv("NPCBRIDGE_VECTORS") or (S.lua_root .. "/../../tests/vectors")

function S.read(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

function S.unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

function S.hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- JSON --------------------------------------------------------------------------------------
local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
    0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

function S.json_decode(s)
  local pos = 1
  local value
  local function ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local function str()
    pos = pos + 1
    local out = {}
    while true do
      local c = s:sub(pos, pos)
      if c == '"' then pos = pos + 1; break end
      if c == "\\" then
        local e = s:sub(pos + 1, pos + 1)
        local map = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }
        if e == "u" then
          local cp = tonumber(s:sub(pos + 2, pos + 5), 16)
          pos = pos + 6
          if cp >= 0xD800 and cp < 0xDC00 and s:sub(pos, pos + 1) == "\\u" then
            local lo = tonumber(s:sub(pos + 2, pos + 5), 16)
            cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
            pos = pos + 6
          end
          out[#out + 1] = utf8_char(cp)
        else
          out[#out + 1] = assert(map[e], "bad escape")
          pos = pos + 2
        end
      else
        out[#out + 1] = c
        pos = pos + 1
      end
    end
    return table.concat(out)
  end
  value = function()
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      pos = pos + 1
      local t = msgpack.map({})
      ws()
      if s:sub(pos, pos) == "}" then pos = pos + 1; return t end
      while true do
        ws()
        local k = str()
        ws(); assert(s:sub(pos, pos) == ":"); pos = pos + 1
        t[k] = value()
        ws()
        local d = s:sub(pos, pos); pos = pos + 1
        if d == "}" then return t end
        assert(d == ",", "expected , in object")
      end
    elseif c == "[" then
      pos = pos + 1
      local t = msgpack.array({})
      ws()
      if s:sub(pos, pos) == "]" then pos = pos + 1; return t end
      while true do
        t[#t + 1] = value()
        ws()
        local d = s:sub(pos, pos); pos = pos + 1
        if d == "]" then return t end
        assert(d == ",", "expected , in array")
      end
    elseif c == '"' then
      return str()
    elseif s:sub(pos, pos + 3) == "true" then pos = pos + 4; return true
    elseif s:sub(pos, pos + 4) == "false" then pos = pos + 5; return false
    elseif s:sub(pos, pos + 3) == "null" then pos = pos + 4; return msgpack.null
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      assert(num and #num > 0, "bad JSON at " .. pos)
      pos = pos + #num
      if num:find("[.eE]") then return tonumber(num) + 0.0 end
      return math.tointeger and math.tointeger(tonumber(num)) or tonumber(num)
    end
  end
  local v = value()
  return v
end

function S.json_file(path) return S.json_decode(S.read(path)) end

-- Tagged JSON -> Lua value as msgpack.decode would produce it ---------------------------------
-- Returns value, or nil plus "needs_int64" when the value cannot be exact on this Lua.
function S.untag(v)
  if type(v) ~= "table" or v == msgpack.null then return v end
  if msgpack.is_map(v) then
    if v["$float"] ~= nil then return v["$float"] + 0.0 end
    if v["$bin"] ~= nil then return msgpack.bin(S.unhex(v["$bin"])) end
    if v["$int"] ~= nil then return { ["$int"] = v["$int"] } end
    local t = msgpack.map({})
    for k, x in pairs(v) do t[k] = S.untag(x) end
    return t
  end
  local t = msgpack.array({})
  for i = 1, #v do t[i] = S.untag(v[i]) end
  return t
end

-- deep equality between a decoded value and an expected one; returns ok, path-of-difference
function S.same(a, b, path)
  path = path or "$"
  if type(b) == "table" and b["$int"] then
    if type(a) == "table" and getmetatable(a) == msgpack.UINT64 then
      return string.format("%u", a.value) == b["$int"] or ("%u"):format(a.value) == b["$int"], path
    end
    return string.format("%d", a) == b["$int"], path
  end
  if type(a) ~= type(b) then return false, path .. " type " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" then
    if math.type and math.type(a) ~= math.type(b) then
      return false, path .. " " .. math.type(a) .. " vs " .. math.type(b)
    end
    return a == b, path .. " " .. tostring(a) .. " vs " .. tostring(b)
  end
  if type(a) ~= "table" then return a == b, path end
  if getmetatable(a) ~= getmetatable(b) then return false, path .. " metatable" end
  if msgpack.is_bin(a) then return a.data == b.data, path end
  for k, v in pairs(a) do
    local ok, where = S.same(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, where end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "." .. tostring(k) .. " missing" end
  end
  return true
end

-- WebSocket frames -----------------------------------------------------------------------------
-- a server frame (unmasked), with reserved bits `rsv` set when given
function S.server_frame(opcode, payload, fin, rsv)
  local f = require("npcbridge.wsproto_frame").encode_frame(opcode, payload, fin)
  if rsv then f = string.char(f:byte(1) + rsv * 16) .. f:sub(2) end
  return f
end

-- decode the frames a client sent (checking each is masked)
local luassert = require("luassert") -- busted's `assert`, which only spec files see as a global
function S.client_frames(bytes)
  local p = require("npcbridge.wsproto_frame").Parser.new()
  p:feed(bytes)
  local out = {}
  while true do
    local f = p:next()
    if not f then break end
    luassert.is_true(f.masked, "client frames must be masked (5.1)")
    out[#out + 1] = f
  end
  return out
end

return S
