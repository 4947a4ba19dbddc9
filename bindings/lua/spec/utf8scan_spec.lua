-- The UTF-8 scanner shared by msgpack (str) and wsproto (text messages, close reasons).
local utf8scan = require("npcbridge.utf8scan")

describe("utf8scan", function()
  it("tells well-formed, incomplete and bad apart (RFC 3629)", function()
    assert.are.equal("ok", utf8scan.scan("Grüß 标 😀"))
    assert.are.equal("ok", utf8scan.scan(""))
    assert.are.equal("incomplete", utf8scan.scan("a\226\130"))
    assert.are.equal("incomplete", utf8scan.scan("\240\159"))
    assert.are.equal("bad", utf8scan.scan("\192\128")) -- overlong
    assert.are.equal("bad", utf8scan.scan("\237\160\128")) -- surrogate
    assert.are.equal("bad", utf8scan.scan("\244\144\128\128")) -- above U+10FFFF
    assert.are.equal("bad", utf8scan.scan("\128"))
    assert.is_true(utf8scan.valid("é"))
    assert.is_false(utf8scan.valid("\226\130"))
    assert.is_true(utf8scan.prefix_ok("\226\130"))
    assert.is_false(utf8scan.prefix_ok("\255"))
  end)

  it("cuts on a character boundary, never inside a character", function()
    local s = "aé标😀" -- 1 + 2 + 3 + 4 bytes
    local expected = { [0] = "", "a", "a", "aé", "aé", "aé", "aé标", "aé标", "aé标", "aé标", "aé标😀" }
    for n = 0, 10 do
      assert.are.equal(expected[n], utf8scan.cut(s, n), "cut at " .. n)
      assert.is_true(utf8scan.valid(utf8scan.cut(s, n)))
    end
    assert.are.equal(s, utf8scan.cut(s, 99))
  end)
end)
