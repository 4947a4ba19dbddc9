--- Error values of the npcbridge client, and the guarded call of a game's callback. Errors are
--- values, never raised: tables with `code`, `message`, `retryable` and, when the server sent
--- them, `id` and `retry_after_ms` (`tostring(err)` reads well). `npcbridge` re-exports `Error`
--- and `new` (as `npcbridge.error`).
---@class npcbridge.errors
local M = { _VERSION = "0.1.0" }

local setmetatable, pairs, pcall, tostring = setmetatable, pairs, pcall, tostring
local io = io

---@class npcbridge.Error
---@field code string server codes (bad_request, unknown_npc, rate_limited, ...) or client codes:
---                  "disconnected", "not_connected", "timeout", "encode_error", "too_large", "closed",
---                  "bad_url", "resolve_failed"
---@field message string
---@field retryable boolean
---@field id any|nil the request id
---@field retry_after_ms integer|nil
---@field partial string|nil text streamed before a `say` failed

local Error = {}
Error.__index = Error
Error.__tostring = function(e)
  return "npcbridge error " .. tostring(e.code) .. ": " .. tostring(e.message)
end
M.Error = Error

--- Make an error value.
---@param code string
---@param message string
---@param retryable boolean|nil
---@return npcbridge.Error
function M.new(code, message, retryable)
  return setmetatable({ code = code, message = message, retryable = retryable or false }, Error)
end

--- The error value of a server `error` message.
---@param msg table
---@return npcbridge.Error
function M.from_server(msg)
  local e = M.new(msg.code or "internal", msg.message or "", msg.retryable == true)
  e.id = msg.id
  e.retry_after_ms = msg.retry_after_ms
  return e
end

--- A copy of `err` (every field) carrying the request id `id`.
---@param err npcbridge.Error
---@param id any
---@return npcbridge.Error
function M.with_id(err, id)
  local e = setmetatable({}, Error)
  for k, v in pairs(err) do e[k] = v end
  e.id = id
  return e
end

--- Call a game's callback when there is one. A callback that raises is reported on stderr and
--- does not break the client (the next callbacks still run).
---@param fn function|nil
function M.call(fn, ...)
  if fn then
    local ok, err = pcall(fn, ...)
    if not ok then
      io.stderr:write("npcbridge: a callback raised: ", tostring(err), "\n")
    end
  end
end

return M
