--- Non-blocking TCP, and TLS through LuaSec, for the WebSocket client. Every call returns at
--- once (sockets have `settimeout(0)`); the "try again later" answers of LuaSocket and LuaSec
--- ("timeout", "wantread", "wantwrite") are told apart from real failures here, so the caller
--- only sees progress or an error message.
---@class npcbridge.tcp
local M = { _VERSION = "0.1.0" }

local socket = require("socket")

local find, concat = string.find, table.concat
local pcall, tostring = pcall, tostring
local io = io

--- True when a LuaSocket / LuaSec error only means "not now" (no data, buffer full, TLS wants I/O).
---@param err string|nil
---@return boolean
function M.again(err)
  return err == "timeout" or err == "wantread" or err == "wantwrite"
end
local again = M.again

--- Start a TCP connection to `host` (an IP address: IPv6 when it has a colon) and `port`.
--- Returns the socket and whether it is connected already (else `finish_connect` tells when),
--- or nil and a message.
---@param host string
---@param port integer
---@return table|nil sock
---@return boolean|string connected_or_err
function M.open(host, port)
  local tcp
  if find(host, ":", 1, true) and socket.tcp6 then tcp = socket.tcp6() else tcp = socket.tcp() end
  if not tcp then return nil, "cannot create a TCP socket" end
  tcp:settimeout(0)
  if tcp.setoption then pcall(tcp.setoption, tcp, "tcp-nodelay", true) end
  local ok, err = tcp:connect(host, port)
  if ok then return tcp, true end
  if err == "timeout" or err == "Operation already in progress" then return tcp, false end
  tcp:close()
  return nil, "connect: " .. tostring(err)
end

--- Whether a connection started by `open` is established: true, false (not yet), or nil and a
--- message (refused, unreachable...).
---@param sock table
---@param host string
---@param port integer
---@return boolean|nil done
---@return string|nil err
function M.finish_connect(sock, host, port)
  local _, writable = socket.select(nil, { sock }, 0)
  if not (writable and #writable > 0) then return false end
  local ok, err = sock:connect(host, port)
  if ok or err == "already connected" then return true end
  return nil, "connect: " .. tostring(err)
end

--- LuaSec context parameters for a client: TLS, the server's certificate verified against
--- /etc/ssl/certs/ca-certificates.crt when that file exists (else not verified).
---@return table
function M.default_tls_params()
  local params = { mode = "client", protocol = "any", options = { "all", "no_sslv2", "no_sslv3" } }
  local f = io.open("/etc/ssl/certs/ca-certificates.crt", "rb")
  if f then
    f:close()
    params.verify = "peer"
    params.cafile = "/etc/ssl/certs/ca-certificates.crt"
  else
    params.verify = "none"
  end
  return params
end

--- Wrap a connected TCP socket in TLS (LuaSec module `ssl`), naming `host` for SNI. Returns the
--- non-blocking TLS connection (its handshake still to do: `tls_step`), or nil and a message.
---@param ssl table
---@param sock table
---@param params table
---@param host string
---@return table|nil conn
---@return string|nil err
function M.wrap_tls(ssl, sock, params, host)
  local conn, err = ssl.wrap(sock, params)
  if not conn then return nil, "tls: " .. tostring(err) end
  if conn.sni then conn:sni(host) end
  conn:settimeout(0)
  return conn
end

--- One step of the TLS handshake: true when it is done, false when it waits for the network,
--- nil and a message when it failed (e.g. a certificate that cannot be verified).
---@param conn table
---@return boolean|nil done
---@return string|nil err
function M.tls_step(conn)
  local ok, err = conn:dohandshake()
  if ok then return true end
  if again(err) then return false end
  return nil, "tls handshake: " .. tostring(err)
end

--- Write `buf` from byte `pos` on, as far as the socket takes it now. Returns the position of
--- the first byte not written, and the error when the socket failed.
---@param sock table
---@param buf string
---@param pos integer
---@return integer pos
---@return string|nil err
function M.write(sock, buf, pos)
  local last, err, partial = sock:send(buf, pos)
  last = last or partial
  if last and last >= pos then pos = last + 1 end
  if err and not again(err) then return pos, err end
  return pos
end

--- Read what has arrived, at most about `budget` bytes or for `max_time` seconds. Returns the
--- bytes, and the error when the connection ended ("closed", ...).
---@param sock table
---@param budget integer
---@param max_time number
---@return string data
---@return string|nil err
function M.read(sock, budget, max_time)
  local parts, total = {}, 0
  local t_end = socket.gettime() + max_time
  while total < budget do
    local data, err, partial = sock:receive(8192)
    data = data or partial
    if data and #data > 0 then
      parts[#parts + 1] = data
      total = total + #data
    end
    if err then
      if again(err) then break end
      return concat(parts), err
    end
    if socket.gettime() > t_end then break end
  end
  return concat(parts)
end

return M
