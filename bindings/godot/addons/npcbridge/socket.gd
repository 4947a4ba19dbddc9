class_name NPCBridgeSocket
extends Node
## The socket adapter under an [NPCBridgeProtocol]: one [WebSocketPeer], polled every frame, that
## hands on what happens to it as signals and knows nothing of the protocol.
##
## [NPCBridgeConnection] makes one as its child. Tests (or a game with another transport)
## give the protocol a subclass instead: override [method open], [method send], [method close]
## and [method poll], and emit the signals.

## The WebSocket opened.
signal opened
## One WebSocket message arrived ([param is_text]: a text message rather than a binary one).
signal received(data: PackedByteArray, is_text: bool)
## The WebSocket closed by itself (not by [method close]); [param code] is the close code
## (-1 when it was not closed cleanly, e.g. the server could not be reached).
signal closed(code: int, reason: String)
## Emitted at the end of every [method poll], so the protocol can run its timers.
signal polled

var _peer: WebSocketPeer = null
var _open_reported: bool = false


func _process(_delta: float) -> void:
	poll()


func _exit_tree() -> void:
	close()


## Starts connecting to [param url]; messages up to [param max_message_bytes] are accepted.
## Returns [constant OK] or the error from [method WebSocketPeer.connect_to_url].
func open(url: String, max_message_bytes: int) -> Error:
	close()
	var peer := WebSocketPeer.new()
	peer.inbound_buffer_size = max_message_bytes
	peer.outbound_buffer_size = max_message_bytes
	peer.max_queued_packets = 4096
	var error := peer.connect_to_url(url)
	if error == OK:
		_peer = peer
		_open_reported = false
	return error


## Sends [param data] as one binary WebSocket message.
func send(data: PackedByteArray) -> Error:
	if _peer == null or _peer.get_ready_state() != WebSocketPeer.STATE_OPEN:
		return ERR_CONNECTION_ERROR
	return _peer.send(data, WebSocketPeer.WRITE_MODE_BINARY)


## Closes the WebSocket (if any) with [param code]; no [signal closed] follows.
func close(code: int = 1000, reason: String = "") -> void:
	if _peer != null:
		_peer.close(code, reason)
		_peer = null


## Polls the WebSocket and emits what happened: [signal opened], [signal received] for each
## message, [signal closed], then [signal polled]. Called every frame by [method Node._process].
func poll() -> void:
	if _peer != null:
		_peer.poll()
		if _peer.get_ready_state() == WebSocketPeer.STATE_OPEN and not _open_reported:
			_open_reported = true
			opened.emit()
		# Read what arrived even when the socket closed in the same poll: a server's last words
		# (e.g. `error` unauthorized before close 4001) come right before its close.
		while _peer != null and _peer.get_available_packet_count() > 0:
			var data := _peer.get_packet()
			received.emit(data, _peer.was_string_packet())
		if _peer != null and _peer.get_ready_state() == WebSocketPeer.STATE_CLOSED:
			var code := _peer.get_close_code()
			var reason := _peer.get_close_reason()
			_peer = null
			closed.emit(code, reason)
	polled.emit()
