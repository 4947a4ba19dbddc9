-- The shared flow vectors (tests/vectors/flows.json): server frames in arrival order and how
-- each request must end, fed to the client's one routing piece (npcbridge.router), no socket.
local router = require("npcbridge.router")
local S = require("spec.support")

local flows = S.json_file(S.vectors_dir .. "/flows.json").flows

-- JSON keys are strings; a key made of digits only stands for an integer id.
local function id_of(key)
  if key:match("^%d+$") then return math.tointeger and math.tointeger(tonumber(key)) or tonumber(key) end
  return key
end

-- Feed every frame; return the ended requests (id -> {at, frame, rec}), strays, the router.
local function run(flow)
  local r = router.new()
  for key, mtype in pairs(flow.requests) do r:add(id_of(key), mtype, { deltas = {} }) end
  local ended, stray = {}, {}
  for i, frame in ipairs(flow.frames) do
    local rec, what = r:route(frame)
    if not rec then
      stray[#stray + 1] = i - 1
    else
      if what == "opened" then rec.deltas = {} end
      if frame.type == "reply.delta" then rec.deltas[#rec.deltas + 1] = frame.text end
      if what == "end" then ended[rec.id] = { at = i - 1, frame = frame, rec = rec } end
    end
  end
  return ended, stray, r
end

describe("flow vectors", function()
  it("are there", function() assert.is_true(#flows >= 10) end)

  for _, flow in ipairs(flows) do
    it(flow.name .. " (" .. flow.rule .. ")", function()
      local ended, stray, r = run(flow)
      assert.are.same(flow.stray, stray, "stray frames")
      local expected_ends = 0
      for key, want in pairs(flow.expect) do
        local id = id_of(key)
        local got = ended[id]
        if want.ends == "open" then
          assert.is_nil(got, key .. " must still be waiting")
          assert.is_not_nil(r:get(id), key .. " must still be pending")
        else
          expected_ends = expected_ends + 1
          assert(got, key .. " did not end")
          assert.are.equal(want.at, got.at, key .. ": ended by the wrong frame")
          local f = got.frame
          if want.ends == "reply" then
            assert.are.equal("reply.end", f.type)
            assert.are.equal(want.finish, f.finish)
            assert.are.equal(want.text, f.text)
            assert.are.equal(want.deltas, table.concat(got.rec.deltas))
          elseif want.ends == "error" then
            assert.are.equal("error", f.type)
            assert.are.equal(want.code, f.code)
            local partial = got.rec.partial_end
            assert.are.equal(want.text, partial and partial.text or nil)
          else
            assert.are.equal("answer", want.ends)
            assert.are.equal(want.answer_type, f.type)
          end
        end
      end
      local n = 0
      for _ in pairs(ended) do n = n + 1 end
      assert.are.equal(expected_ends, n, "requests ended that the flow does not end")
    end)
  end
end)
