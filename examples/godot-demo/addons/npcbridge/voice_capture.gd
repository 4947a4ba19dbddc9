class_name NPCVoiceCapture
extends RefCounted
## Push-to-talk from the microphone: an [AudioStreamMicrophone] plays on a muted bus (so the
## player does not hear themselves) whose [AudioEffectCapture] collects the samples; [method read]
## hands them on as 16-bit mono PCM at [method get_sample_rate], ready for a
## [code]speech.chunk[/code]. Needs the project setting [code]audio/driver/enable_input[/code]
## (and, on the web, the player's permission to use the microphone). [NPCSpeaker] owns one.

## The bus the microphone plays on (made, muted, when the project has none of that name).
var bus_name: StringName = &"NPCBridgeMic"

var _host: Node = null
var _microphone: AudioStreamPlayer = null
var _capture: AudioEffectCapture = null


## A capture whose microphone player becomes a child of [param host].
func _init(host: Node = null, bus: StringName = &"NPCBridgeMic") -> void:
	_host = host
	bus_name = bus


## Starts recording. [constant ERR_UNAVAILABLE] when audio input is off in the project settings.
func start() -> Error:
	if not bool(ProjectSettings.get_setting("audio/driver/enable_input", false)):
		return ERR_UNAVAILABLE
	if _host == null:
		return ERR_UNCONFIGURED
	_capture = _capture_effect()
	_capture.clear_buffer()
	if _microphone == null:
		_microphone = AudioStreamPlayer.new()
		_microphone.name = "Microphone"
		_microphone.stream = AudioStreamMicrophone.new()
		_host.add_child(_microphone)
	_microphone.bus = bus_name
	_microphone.play()
	return OK


## True while recording.
func is_recording() -> bool:
	return _microphone != null and _microphone.playing


## The samples recorded since the last call, as 16-bit mono PCM bytes.
func read() -> PackedByteArray:
	if _capture == null:
		return PackedByteArray()
	var available := _capture.get_frames_available()
	if available <= 0:
		return PackedByteArray()
	return NPCVoice.pcm16_mono(_capture.get_buffer(available))


## Stops recording and returns what was recorded since the last [method read].
func stop() -> PackedByteArray:
	var rest := read()
	if _microphone != null:
		_microphone.stop()
	return rest


## The rate of the recorded samples (the engine's mix rate).
func get_sample_rate() -> int:
	return int(AudioServer.get_mix_rate())


func _capture_effect() -> AudioEffectCapture:
	var bus := AudioServer.get_bus_index(bus_name)
	if bus < 0:
		bus = AudioServer.bus_count
		AudioServer.add_bus()
		AudioServer.set_bus_name(bus, bus_name)
		AudioServer.set_bus_mute(bus, true)
	for i in AudioServer.get_bus_effect_count(bus):
		var effect := AudioServer.get_bus_effect(bus, i)
		if effect is AudioEffectCapture:
			return effect
	var capture := AudioEffectCapture.new()
	capture.buffer_length = 0.5  # a slow frame (a hitch, a load) loses nothing
	AudioServer.add_bus_effect(bus, capture)
	return capture
