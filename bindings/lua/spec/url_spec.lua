-- Parsing ws:// and wss:// URLs (npcbridge.url).
local url = require("npcbridge.url")

describe("websocket url parsing", function()
  it("reads host, port and path", function()
    assert.are.same({ scheme = "ws", host = "127.0.0.1", port = 8765, path = "/", secure = false },
      url.parse_url("ws://127.0.0.1:8765"))
    assert.are.same({ scheme = "wss", host = "example.com", port = 443, path = "/a/b?x=1", secure = true },
      url.parse_url("wss://example.com/a/b?x=1"))
    assert.are.same({ scheme = "ws", host = "::1", port = 9000, path = "/", secure = false },
      url.parse_url("ws://[::1]:9000/"))
    assert.is_nil((url.parse_url("http://example.com/")))
  end)
end)
