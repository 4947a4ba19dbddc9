-- LÖVE 11.4 configuration. Scripted (headless) mode, for CI and smoke tests, is asked for with the
-- environment variable NPCBRIDGE_DEMO_SCRIPTED=1 or the argument --scripted: then no window,
-- graphics, audio or joystick is started (audio only with NPCBRIDGE_DEMO_VOICE=1) and the game
-- runs its loop without a display.

local function scripted()
  local env = os.getenv("NPCBRIDGE_DEMO_SCRIPTED")
  if env and env ~= "" and env ~= "0" then return true end
  for _, a in ipairs(arg or {}) do
    if a == "--scripted" then return true end
  end
  return false
end

DEMO_SCRIPTED = scripted()
-- NPCBRIDGE_DEMO_VOICE=1 keeps the audio and sound modules on in scripted mode: the NPCs speak
-- (with no sound card, point OpenAL Soft at its wave backend through ALSOFT_CONF).
local voice_env = os.getenv("NPCBRIDGE_DEMO_VOICE")
DEMO_VOICE = voice_env ~= nil and voice_env ~= "" and voice_env ~= "0"

function love.conf(t)
  t.identity = "npcbridge-love-demo"
  t.version = "11.4"
  t.console = false
  t.window.title = "npcbridge LÖVE demo: talk to Brom and Aelindra"
  t.window.width = 900
  t.window.height = 600
  if DEMO_SCRIPTED then
    t.window = false
    t.modules.window = false
    t.modules.graphics = false
    t.modules.audio = DEMO_VOICE
    t.modules.sound = DEMO_VOICE
    t.modules.joystick = false
    t.modules.video = false
    t.modules.physics = false
  end
end
