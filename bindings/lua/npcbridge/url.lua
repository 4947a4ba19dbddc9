--- Where a client connects: the parts of a `ws://` / `wss://` URL, and the address of its host.
---@class npcbridge.url
local M = { _VERSION = "0.1.0" }

local socket = require("socket")

local sub, tonumber, tostring, ipairs, type = string.sub, tonumber, tostring, ipairs, type

--- Parse a ws:// or wss:// URL. Returns {scheme, host, port, path, secure} or nil, err.
---@param url string
---@return table|nil parts
---@return string|nil err
function M.parse_url(url)
  local scheme, rest = url:match("^(wss?)://(.*)$")
  if not scheme then return nil, "url must start with ws:// or wss://" end
  local hostport, path = rest:match("^([^/?#]*)(.*)$")
  if path == "" then path = "/" end
  if sub(path, 1, 1) == "?" then path = "/" .. path end
  path = path:gsub("#.*$", "")
  local host, port
  if sub(hostport, 1, 1) == "[" then
    host, port = hostport:match("^%[([^%]]+)%]:?(%d*)$")
  else
    host, port = hostport:match("^([^:]+):?(%d*)$")
  end
  if not host or host == "" then return nil, "url has no host" end
  local secure = scheme == "wss"
  port = tonumber(port) or (secure and 443 or 80)
  return { scheme = scheme, host = host, port = port, path = path, secure = secure }
end

--- The address to connect TCP to: the host itself when it is an IP address, else the first IPv4
--- (then IPv6) address the resolver gives, or nil and a message. This is the lookup that blocks.
---@param host string
---@return string|nil address
---@return string|nil err
function M.resolve(host)
  if host:match("^%d+%.%d+%.%d+%.%d+$") or host:find(":", 1, true) then return host end
  local dns = socket.dns
  if dns.getaddrinfo then
    local list = dns.getaddrinfo(host)
    if type(list) == "table" then
      for _, family in ipairs({ "inet", "inet6" }) do
        for _, a in ipairs(list) do
          if a.family == family and a.addr then return a.addr end
        end
      end
    end
  end
  local ip, err = dns.toip(host)
  if ip then return ip end
  return nil, "cannot resolve " .. host .. ": " .. tostring(err)
end

return M
