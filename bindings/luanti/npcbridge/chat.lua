--- The `/npc <name> <text>` chat command: the NPC answers in the player's HUD and chat.
local api, display = ...

minetest.register_chatcommand("npc", {
  params = "<npc> <text>",
  description = "Say something to an NPC (its reply streams above the hotbar, then into chat)",
  privs = { shout = true },
  func = function(name, param)
    local npc, text = param:match("^(%S+)%s+(.+)$")
    if not npc then
      return false, "Usage: /npc <npc> <text>"
    end
    api.say(npc, name, text, display.reply_callbacks(name, api.display_name(npc)))
    return true
  end,
})
