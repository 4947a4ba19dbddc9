-- The opening handshake (npcbridge.wsproto_handshake). Sections are those of RFC 6455.
local handshake = require("npcbridge.wsproto_handshake")

describe("opening handshake (4.1)", function()
  it("builds the request with a fresh random key", function()
    local k1, k2 = handshake.new_key(), handshake.new_key()
    assert.are_not.equal(k1, k2)
    assert.are.equal(24, #k1)
    local req = handshake.handshake_request("example.com:8765", "/chat", k1, { ["X-Game"] = "demo" })
    assert.truthy(req:find("^GET /chat HTTP/1%.1\r\n"))
    assert.truthy(req:find("\r\nHost: example.com:8765\r\n", 1, true))
    assert.truthy(req:find("\r\nUpgrade: websocket\r\n", 1, true))
    assert.truthy(req:find("\r\nConnection: Upgrade\r\n", 1, true))
    assert.truthy(req:find("\r\nSec-WebSocket-Key: " .. k1 .. "\r\n", 1, true))
    assert.truthy(req:find("\r\nSec-WebSocket-Version: 13\r\n", 1, true))
    assert.are.equal("\r\nX-Game: demo\r\n\r\n", req:sub(-18))
  end)

  local key = "dGhlIHNhbXBsZSBub25jZQ=="
  local function response(accept, extra)
    return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      .. "Sec-WebSocket-Accept: " .. accept .. "\r\n" .. (extra or "") .. "\r\n"
  end

  it("accepts the RFC's example response (1.3)", function()
    local headers = assert(handshake.check_handshake_response(response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), key))
    assert.are.equal("websocket", headers.upgrade)
  end)

  it("rejects a wrong accept value", function()
    local ok, err = handshake.check_handshake_response(response("AAAAAAAAAAAAAAAAAAAAAAAAAAA="), key)
    assert.is_nil(ok)
    assert.truthy(err:find("Accept"))
  end)

  it("rejects a non-101 status and an unoffered extension", function()
    assert.is_nil((handshake.check_handshake_response("HTTP/1.1 403 Forbidden\r\n\r\n", key)))
    assert.is_nil((handshake.check_handshake_response(
      response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Sec-WebSocket-Extensions: permessage-deflate\r\n"), key)))
  end)
end)
