--- Showing a reply to a player as it arrives: the text so far in a HUD line above the hotbar,
--- then the whole reply in chat. Used by the chat command and the example NPC; a mod may use it
--- for its own NPCs (`npcbridge.show_reply(player_name, speaker)` gives the callbacks).
local Display = {}

local WRAP = 70         -- characters per HUD line (HUD text does not wrap by itself)
local LINGER_S = 5      -- how long the finished text stays on the HUD
local huds = {}         -- player name -> {id, generation}

local function wrap(text)
  local lines, line = {}, ""
  for word in text:gmatch("%S+") do
    if #line > 0 and #line + 1 + #word > WRAP then
      lines[#lines + 1], line = line, word
    else
      line = #line > 0 and (line .. " " .. word) or word
    end
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n")
end

local function show_hud(name, text)
  local player = minetest.get_player_by_name(name)
  if not player then
    return
  end
  local hud = huds[name]
  if hud and player:hud_get(hud.id) then
    player:hud_change(hud.id, "text", text)
  else
    local id = player:hud_add({
      type = "text", hud_elem_type = "text", -- "type" from 5.9 on, "hud_elem_type" before
      position = { x = 0.5, y = 0.78 }, alignment = { x = 0, y = -1 },
      number = 0xFFFFFF, text = text, z_index = 10,
    })
    hud = { id = id, generation = 0 }
    huds[name] = hud
  end
  hud.generation = hud.generation + 1
  return hud
end

local function clear_later(name, hud)
  if not hud then
    return
  end
  local generation = hud.generation
  minetest.after(LINGER_S, function()
    local player = minetest.get_player_by_name(name)
    if player and huds[name] == hud and hud.generation == generation then
      player:hud_remove(hud.id)
      huds[name] = nil
    end
  end)
end

minetest.register_on_leaveplayer(function(player)
  huds[player:get_player_name()] = nil
end)

--- Callbacks for `npcbridge.say` that show the reply of `speaker` (the NPC's display name) to
--- the player `name`; `extra` callbacks (same names) run after them.
function Display.reply_callbacks(name, speaker, extra)
  extra = extra or {}
  local prefix = "<" .. speaker .. "> "
  local hud
  local function also(key, ...)
    if extra[key] then
      extra[key](...)
    end
  end
  return {
    on_delta = function(text, so_far, msg)
      hud = show_hud(name, wrap(prefix .. so_far))
      also("on_delta", text, so_far, msg)
    end,
    on_emote = function(emote, msg)
      minetest.chat_send_player(name, "* " .. speaker .. " " .. emote)
      also("on_emote", emote, msg)
    end,
    on_action = function(action, args, msg)
      minetest.chat_send_player(name, "* " .. speaker .. " does: " .. action)
      also("on_action", action, args, msg)
    end,
    on_done = function(text, msg)
      if text ~= "" then
        minetest.chat_send_player(name, prefix .. text)
      end
      clear_later(name, hud or show_hud(name, wrap(prefix .. text)))
      also("on_done", text, msg)
    end,
    on_error = function(err)
      minetest.chat_send_player(name, "[npcbridge] " .. speaker .. " cannot answer: "
        .. tostring(err.message) .. " (" .. tostring(err.code) .. ")")
      clear_later(name, hud)
      also("on_error", err)
    end,
  }
end

return Display
