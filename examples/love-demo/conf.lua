-- LÖVE 11.4 configuration. Scripted (headless) mode, for CI and smoke tests, is asked for with the
-- environment variable NPCBRIDGE_DEMO_SCRIPTED=1 or the argument --scripted: then no window,
-- graphics, audio or joystick is started and the game runs its loop without a display.

local function scripted()
  local env = os.getenv("NPCBRIDGE_DEMO_SCRIPTED")
  if env and env ~= "" and env ~= "0" then return true end
  for _, a in ipairs(arg or {}) do
    if a == "--scripted" then return true end
  end
  return false
end

DEMO_SCRIPTED = scripted()

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
    t.modules.audio = false
    t.modules.sound = false
    t.modules.joystick = false
    t.modules.video = false
    t.modules.physics = false
  end
end
