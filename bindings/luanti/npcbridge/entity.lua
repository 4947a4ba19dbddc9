--- An example NPC: the entity `npcbridge:npc` with a nametag; right-click it to talk (a small
--- form asks what to say; the reply streams above the hotbar, then goes to chat).
--- `/npc_spawn <npc> [display name]` places one in front of you (needs the `server` privilege).
local api, display = ...

local FORM = "npcbridge:talk"
local talking = {} -- player name -> npc id of the form they have open

local function properties()
  if minetest.get_modpath("player_api") then
    return { visual = "mesh", mesh = "character.b3d", textures = { "character.png" },
      visual_size = { x = 1, y = 1 } }
  end
  return { visual = "upright_sprite", textures = { "unknown_object.png", "unknown_object.png" } }
end

local initial = properties()
initial.physical, initial.collide_with_objects = true, true
initial.collisionbox = { -0.3, 0.0, -0.3, 0.3, 1.7, 0.3 }
initial.selectionbox = initial.collisionbox
initial.static_save = true
initial.nametag_color = "#FFD966"

minetest.register_entity("npcbridge:npc", {
  initial_properties = initial,

  on_activate = function(self, staticdata)
    local saved = minetest.deserialize(staticdata or "") or {}
    self.npc = saved.npc or "blacksmith"
    self.display = saved.display or api.display_name(self.npc)
    self.object:set_properties({ nametag = self.display })
    self.object:set_armor_groups({ immortal = 1 })
  end,

  get_staticdata = function(self)
    return minetest.serialize({ npc = self.npc, display = self.display })
  end,

  on_rightclick = function(self, clicker)
    if not clicker or not clicker:is_player() then
      return
    end
    local name = clicker:get_player_name()
    talking[name] = { npc = self.npc, display = self.display }
    minetest.show_formspec(name, FORM, "formspec_version[4]size[9,2.6]"
      .. "field[0.4,0.7;8.2,0.8;text;" .. minetest.formspec_escape("Say to " .. self.display)
      .. ";]field_close_on_enter[text;true]button_exit[3,1.7;3,0.7;send;Say]")
  end,
})

minetest.register_on_player_receive_fields(function(player, formname, fields)
  if formname ~= FORM then
    return false
  end
  local name = player:get_player_name()
  local target = talking[name]
  talking[name] = nil
  local text = fields.text and fields.text:gsub("^%s+", ""):gsub("%s+$", "")
  if target and text and text ~= "" and (fields.send or fields.key_enter_field == "text") then
    api.say(target.npc, name, text, display.reply_callbacks(name, target.display))
  end
  return true
end)

minetest.register_on_leaveplayer(function(player)
  talking[player:get_player_name()] = nil
end)

minetest.register_chatcommand("npc_spawn", {
  params = "<npc> [display name]",
  description = "Place a talking NPC in front of you",
  privs = { server = true },
  func = function(name, param)
    local npc, shown = param:match("^(%S+)%s*(.*)$")
    local player = minetest.get_player_by_name(name)
    if not npc or not player then
      return false, "Usage: /npc_spawn <npc> [display name]"
    end
    local pos = vector.add(player:get_pos(), vector.multiply(player:get_look_dir(), 2))
    local staticdata = minetest.serialize({ npc = npc,
      display = shown ~= "" and shown or api.display_name(npc) })
    local object = minetest.add_entity(pos, "npcbridge:npc", staticdata)
    return object ~= nil, object and ("Placed " .. npc) or "Could not place the NPC here"
  end,
})
