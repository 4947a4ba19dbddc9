--- HTTP requests to the npcbridge server through the engine's sandboxed HTTP API. Each request is
--- a `fetch_async`; `step()` (called from a globalstep) polls the handles and runs the callbacks of
--- the finished ones, so the server step never waits on the network.
local json = ...

local Transport = {}
Transport.__index = Transport

--- A transport to `base_url` (ending without "/") with an optional bearer `token`.
---@param http table what `minetest.request_http_api()` returned
---@param parse fun(text: string): any `minetest.parse_json`
function Transport.new(http, parse, base_url, token)
  return setmetatable({
    http = http, parse = parse, base_url = base_url, token = token, pending = {},
  }, Transport)
end

--- The outcome of a finished fetch: `{code, body, reachable, reason}`. `code` is 0 when no HTTP
--- answer came (`reachable` false: refused, timed out, name not resolved); `body` the decoded
--- JSON object or nil.
local function outcome(self, res)
  local result = { code = res.code or 0, reachable = res.succeeded and (res.code or 0) > 0 }
  if not result.reachable then
    result.code = 0
    result.reason = res.timeout and "timed out"
      or "no answer (connection refused or name not resolved)"
    return result
  end
  result.body, result.reason = json.decode_object(self.parse, res.data)
  return result
end

--- Start `method` `path` (with `body`, a table sent as JSON); `on_done(result)` runs from a
--- later `step()`. Returns false and a reason when the body cannot be encoded.
function Transport:request(method, path, body, timeout_s, on_done)
  local headers = { "Accept: application/json" }
  if self.token and self.token ~= "" then
    headers[#headers + 1] = "Authorization: Bearer " .. self.token
  end
  local req = { url = self.base_url .. path, method = method, timeout = timeout_s,
    extra_headers = headers }
  if body ~= nil then
    local data, err = json.encode(body)
    if not data then
      return false, err
    end
    req.data = data
    headers[#headers + 1] = "Content-Type: application/json"
  end
  local handle = self.http.fetch_async(req)
  self.pending[#self.pending + 1] = { handle = handle, on_done = on_done }
  return true
end

--- Poll every open request; run the callbacks of those that finished (in start order).
function Transport:step()
  local open, finished = {}, {}
  for _, item in ipairs(self.pending) do
    local res = self.http.fetch_async_get(item.handle)
    if res.completed then
      finished[#finished + 1] = { item = item, res = res }
    else
      open[#open + 1] = item
    end
  end
  -- callbacks may start new requests: they join the fresh list
  self.pending = open
  for _, done in ipairs(finished) do
    done.item.on_done(outcome(self, done.res))
  end
end

--- How many requests are open.
function Transport:open_count()
  return #self.pending
end

return Transport
