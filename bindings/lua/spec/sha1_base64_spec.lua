-- SHA-1 (FIPS 180-4 / RFC 3174 test vectors) and base64 (RFC 4648 section 10 test vectors).
local sha1 = require("npcbridge.sha1")
local base64 = require("npcbridge.base64")

describe("sha1", function()
  local cases = {
    { "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
    { "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
    { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
    { "The quick brown fox jumps over the lazy dog", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12" },
    { string.rep("a", 1000), "291e9a6c66994949b57ba5e650361e98fc36b1ba" },
    { string.rep("a", 55), "c1c8bbdc22796e28c0e15163d20899b65621d65a" }, -- padding fits one block
    { string.rep("a", 56), "c2db330f6083854c99d4b5bfb6e8f29f201be699" }, -- padding needs a second block
    { string.rep("a", 64), "0098ba824b5c16427bd7a1122a5a442a25ec644d" },
  }
  for _, c in ipairs(cases) do
    it("hashes " .. #c[1] .. " bytes", function()
      assert.are.equal(c[2], sha1.hex(c[1]))
    end)
  end
  it("gives 20 raw bytes", function()
    assert.are.equal(20, #sha1.digest("x"))
  end)
end)

describe("base64", function()
  local cases = { { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
    { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" }, { "\0\255\254", "AP/+" } }
  for _, c in ipairs(cases) do
    it("encodes and decodes " .. c[2], function()
      assert.are.equal(c[2], base64.encode(c[1]))
      assert.are.equal(c[1], base64.decode(c[2]))
    end)
  end
  it("rejects bad input with an error value", function()
    for _, bad in ipairs({ "Zg=", "Z===", "Zm9v!A==", "Zh==", "Zm9=" , "=Zm9" }) do
      local v, err = base64.decode(bad)
      assert.is_nil(v, bad)
      assert.are.equal("string", type(err))
    end
  end)
  it("computes the RFC 6455 section 1.3 example accept value", function()
    assert.are.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
      base64.encode(sha1.digest("dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11")))
  end)
end)
