class_name NPCBridgeSettings
extends RefCounted
## Names and defaults of the project settings the addon reads (Project > Project Settings >
## npcbridge). The editor plugin registers them; the [code]NPCBridge[/code] autoload reads them.
## Also the defaults of the connection's settings, which [NPCBridgeProtocol] and
## [NPCBridgeConnection] both start from.

## WebSocket URL of the npcbridge server.
const URL := "npcbridge/server/url"
## Token sent in [code]hello[/code] when the server requires one (empty: none).
const TOKEN := "npcbridge/server/token"
## Whether the autoload connects as soon as the game starts.
const AUTOCONNECT := "npcbridge/server/autoconnect"
## Player id sent with [code]say[/code] when a speaker does not set its own.
const PLAYER_ID := "npcbridge/dialogue/player_id"

## Default server URL.
const DEFAULT_URL := "ws://127.0.0.1:8765/"
## Default of [member NPCBridgeProtocol.auto_reconnect].
const DEFAULT_AUTO_RECONNECT := true
## Default of [member NPCBridgeProtocol.reconnect_min_s], in seconds.
const DEFAULT_RECONNECT_MIN_S := 0.5
## Default of [member NPCBridgeProtocol.reconnect_max_s], in seconds.
const DEFAULT_RECONNECT_MAX_S := 30.0
## Default of [member NPCBridgeProtocol.request_timeout_s], in seconds.
const DEFAULT_REQUEST_TIMEOUT_S := 60.0
## Default of [member NPCBridgeProtocol.queue_timeout_s], in seconds.
const DEFAULT_QUEUE_TIMEOUT_S := 10.0
## Default of [member NPCBridgeProtocol.handshake_timeout_s], in seconds.
const DEFAULT_HANDSHAKE_TIMEOUT_S := 15.0
## Default of [member NPCBridgeProtocol.max_message_bytes].
const DEFAULT_MAX_MESSAGE_BYTES := 1 << 20


## Every setting as [name, default value, property hint, hint string].
static func all() -> Array[Array]:
	return [
		[URL, DEFAULT_URL, PROPERTY_HINT_NONE, ""],
		[TOKEN, "", PROPERTY_HINT_PASSWORD, ""],
		[AUTOCONNECT, true, PROPERTY_HINT_NONE, ""],
		[PLAYER_ID, "player", PROPERTY_HINT_NONE, ""],
	]


## The current value of [param setting], or its default when the project does not set it.
static func read(setting: String) -> Variant:
	for row in all():
		if row[0] == setting:
			return ProjectSettings.get_setting(setting, row[1])
	return ProjectSettings.get_setting(setting)
