-- The LÖVE voice checks run headless: no window or graphics, but the audio and sound modules on
-- (OpenAL Soft plays into a WAV file when ALSOFT_CONF names its `wave` backend; see
-- tests/test_love_voice.py).
function love.conf(t)
  t.identity = "npcbridge-love-voice-test"
  t.version = "11.4"
  t.window = false
  t.modules.window, t.modules.graphics, t.modules.joystick = false, false, false
  t.modules.video, t.modules.physics = false, false
  t.modules.audio, t.modules.sound = true, true
end
