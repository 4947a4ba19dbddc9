class_name NPCPersona
extends Resource
## Who an NPC is: the persona the npcbridge server speaks with. Create one in the inspector
## (New Resource > NPCPersona, saved as a [code].tres[/code]) and give it to an [NPCSpeaker].
## Empty fields are left out of the [code]npc.define[/code] message, so the server's defaults
## apply.

## The NPC's name, as players know it (e.g. "Brom").
@export var name: String = ""
## Who the NPC is, in a sentence or two.
@export_multiline var description: String = ""
## Character traits (e.g. "gruff, honest, protective of the village").
@export_multiline var personality: String = ""
## How the NPC talks (e.g. "short sentences, calls everyone 'lad'").
@export_multiline var speech_style: String = ""
## Facts the NPC knows, one per entry.
@export var knowledge: PackedStringArray = PackedStringArray()
## Example lines in the NPC's voice.
@export var examples: PackedStringArray = PackedStringArray()
## Model to use (empty: the server chooses).
@export var model: String = ""
## Sampling temperature (negative: the server's default).
@export_range(-1.0, 2.0, 0.05) var temperature: float = -1.0
## Longest reply in tokens (0: the server's default).
@export_range(0, 4096, 1) var max_tokens: int = 0
## Actions (tool calls) the NPC may take, each
## [code]{"name": String, "description": String, "parameters": JSON schema Dictionary}[/code].
## When the NPC decides to act, [signal NPCSpeaker.action_requested] fires.
@export var actions: Array[Dictionary] = []
@export_group("Voice")
## The voice the NPC speaks with (e.g. "troy", "autumn"; empty: no voice of its own, the
## server's default voice is used when a reply is voiced).
@export var voice_name: String = ""
## Text-to-speech model (empty: the server's default).
@export var voice_model: String = ""
## Speaking speed, 0.25 to 4.0.
@export_range(0.25, 4.0, 0.05) var voice_speed: float = 1.0
## Voice every reply of this NPC, unless a line asks otherwise
## ([code]voice[/code] of [method NPCSpeaker.say]'s fields).
@export var voice_always: bool = false
@export_group("")

## Extra persona fields passed through unchanged (the server may know more than the above).
@export var extra: Dictionary = {}

@export_group("State")
## Keep a mood and a relationship to each player (docs/state.md), starting from the values
## below; [NPCSpeaker] then shows the state and signals its changes.
@export var keeps_state: bool = false
## The resting mood (the mood once a felt one has faded).
@export_enum("neutral", "happy", "sad", "angry", "afraid", "surprised", "disgusted")
var mood: String = "neutral"
## Trust toward a player the NPC has not met (-100..100).
@export_range(-100.0, 100.0, 1.0) var trust: float = 0.0
## Affection toward a player the NPC has not met (-100..100).
@export_range(-100.0, 100.0, 1.0) var affection: float = 0.0
## Familiarity with a player the NPC has not met (0..100).
@export_range(0.0, 100.0, 1.0) var familiarity: float = 0.0
## How strongly exchanges and world events move the NPC (0: never, 2: twice as much).
@export_range(0.0, 2.0, 0.05) var volatility: float = 1.0
## Seconds in which a felt mood halves (0: the server's default).
@export_range(0.0, 86400.0, 1.0) var mood_half_life_s: float = 0.0


## The persona as the protocol's [code]persona[/code] map (empty fields left out).
func to_dict() -> Dictionary:
	var out := extra.duplicate(true)
	out["name"] = name
	for pair: Array in [
		["description", description],
		["personality", personality],
		["speech_style", speech_style],
		["model", model],
	]:
		if not String(pair[1]).is_empty():
			out[pair[0]] = pair[1]
	if not knowledge.is_empty():
		out["knowledge"] = Array(knowledge)
	if not examples.is_empty():
		out["examples"] = Array(examples)
	if temperature >= 0.0:
		out["temperature"] = temperature
	if max_tokens > 0:
		out["max_tokens"] = max_tokens
	if not actions.is_empty():
		out["actions"] = actions.duplicate(true)
	if keeps_state:
		out["state"] = state_dict()
	if not voice_name.is_empty():
		out["voice"] = voice_dict()
	return out


## The persona's [code]state[/code] map: starting values and temperament.
func state_dict() -> Dictionary:
	var out := {
		"mood": mood,
		"trust": trust,
		"affection": affection,
		"familiarity": familiarity,
		"volatility": volatility,
	}
	if mood_half_life_s > 0.0:
		out["mood_half_life_s"] = mood_half_life_s
	return out


## The persona's [code]voice[/code] map (empty when it has no [member voice_name]).
func voice_dict() -> Dictionary:
	if voice_name.is_empty():
		return {}
	var out := {"name": voice_name, "speed": voice_speed, "always": voice_always}
	if not voice_model.is_empty():
		out["model"] = voice_model
	return out
