--- The Lua API other mods call (the `npcbridge` global). Every call returns at once; answers
--- arrive later through the callbacks, from the server step (docs: bindings/luanti/README.md).
local Requests = ...

local API = {}

--- Fill `api` (the mod's global table) with the public functions, sending through `session`
--- and routing answers with `requests`. `disabled`: why the mod cannot talk, `{code, message}`
--- (then every request ends on the next step with `on_error` of that code).
function API.install(api, session, requests, disabled, after)
  local counter = 0
  local names = {}

  local function next_id()
    counter = counter + 1
    return "mt-" .. counter
  end

  -- errors go to the callback on the next step, never from inside the call itself
  local function fail_soon(callbacks, err)
    after(0, function()
      requests.guard(callbacks and callbacks.on_error, err)
    end)
  end

  local function request(msg, callbacks)
    local id = next_id()
    msg.id = id
    if disabled then
      fail_soon(callbacks, Requests.error(disabled.code, disabled.message, false, id))
      return id
    end
    requests:add(id, msg.type, callbacks)
    session:send(msg)
    return id
  end

  --- Define (or replace) the NPC `npc` with `persona` (a table: name, description,
  --- personality, speech_style, knowledge, actions, ...; docs/protocol.md "npc.define").
  --- It is defined again whenever the mod opens a new session. Returns the request id.
  function api.define_npc(npc, persona, callbacks)
    local id = next_id()
    names[npc] = type(persona) == "table" and persona.name or nil
    if disabled then
      fail_soon(callbacks, Requests.error(disabled.code, disabled.message, false, id))
      return id
    end
    requests:add(id, "npc.define", callbacks)
    session:define(npc, persona, id)
    return id
  end

  --- The NPC `npc` answers `text` said by the player `player_name`. `callbacks`: on_delta,
  --- on_emote, on_action, on_done, on_error (see requests.lua). `options`: any optional field of
  --- `say`: context, urgency, max_tokens, temperature, stream. Returns the request id.
  function api.say(npc, player_name, text, callbacks, options)
    local msg = { type = "say", npc = npc, player = player_name, text = text }
    for k, v in pairs(options or {}) do
      msg[k] = v
    end
    return request(msg, callbacks)
  end

  --- Stop the reply `id`; its `on_done` runs with `msg.finish == "cancelled"` and the text so far.
  function api.cancel(id)
    if not requests:has(id) or disabled then
      return false
    end
    if session:unqueue(id) then
      -- not sent yet: it ends here, with nothing said
      local req = requests:remove(id)
      after(0, function()
        requests.guard(req.callbacks.on_done, "", { type = "reply.end", id = id,
          finish = "cancelled", text = "" })
      end)
      return true
    end
    session:send({ type = "cancel", id = id })
    return true
  end

  api.memory = {}

  --- Remember `text` about `player_name` for the NPC `npc`; `options.importance` 1..10.
  function api.memory.add(npc, player_name, text, options, callbacks)
    local msg = { type = "memory.add", npc = npc, player = player_name, text = text }
    for k, v in pairs(options or {}) do
      msg[k] = v
    end
    return request(msg, callbacks)
  end

  --- What the NPC `npc` remembers about `player_name` matching `text` (`options.limit`);
  --- `on_done(items)`, each `{text, kind, importance, score, at}`.
  function api.memory.query(npc, player_name, text, options, callbacks)
    local msg = { type = "memory.query", npc = npc, player = player_name, text = text }
    for k, v in pairs(options or {}) do
      msg[k] = v
    end
    return request(msg, callbacks)
  end

  --- Erase what is remembered about `player_name`: for the NPC `npc`, or for every NPC when
  --- `npc` is nil (the Lua client's order); `on_done` gets the `ok` (with `removed`).
  function api.memory.forget(player_name, npc, callbacks)
    return request({ type = "memory.forget", npc = npc, player = player_name }, callbacks)
  end

  --- A quest from the NPC `npc` (nil: no giver). `options`: theme, difficulty ("easy",
  --- "medium", "hard"), context, fields. `on_done(quest)`: title, description, objectives,
  --- rewards, difficulty, giver and the asked-for fields.
  function api.quest(npc, options, callbacks)
    local msg = { type = "quest.generate", npc = npc }
    for k, v in pairs(options or {}) do
      msg[k] = v
    end
    return request(msg, callbacks)
  end

  --- Send any other client message (`barks.generate`, `ping`, `x.*`); its first answer goes
  --- to `on_done(msg)`. `msg.id` is set here.
  function api.send(msg, callbacks)
    return request(msg, callbacks)
  end

  --- The display name of the NPC `npc`: its persona's `name` when this mod defined it.
  function api.display_name(npc)
    return names[npc] or npc
  end

  --- "ready", "connecting", "idle", "unreachable", "refused" or "disabled".
  function api.status()
    return disabled and "disabled" or session:status()
  end

  --- What the server's `welcome` said (features, limits, models), or nil before a session.
  function api.welcome()
    return session.welcome
  end

  local general = {}
  --- `fn(err)` hears errors that end no request (a refused `cancel`, ...).
  function api.register_on_error(fn)
    general[#general + 1] = fn
  end

  return function(err)
    for _, fn in ipairs(general) do
      requests.guard(fn, err)
    end
  end
end

return API
