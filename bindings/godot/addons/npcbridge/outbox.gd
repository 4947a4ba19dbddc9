class_name NPCBridgeOutbox
extends RefCounted
## The requests made while the connection is not open: they wait here, oldest first, until the
## handshake is done ([NPCBridgeProtocol] then sends them in order) or until they waited too long.
## No socket and no timers of its own: the protocol hands it the time.

var _queued: Array[NPCBridgeRequest] = []


## Keeps [param handle] until the connection opens (its wait counts from when it was made).
func add(handle: NPCBridgeRequest) -> void:
	_queued.append(handle)


## Stops keeping [param handle] (it finished or failed).
func remove(handle: NPCBridgeRequest) -> void:
	_queued.erase(handle)


## True when no request waits.
func is_empty() -> bool:
	return _queued.is_empty()


## True when a waiting request has [param request_id] (same type and value: 1 is not "1").
func has_id(request_id: Variant) -> bool:
	for handle in _queued:
		if typeof(handle.id) == typeof(request_id) and handle.id == request_id:
			return true
	return false


## True when a waiting [code]npc.define[/code] defines [param npc].
func defines(npc: String) -> bool:
	for handle in _queued:
		if handle.type == "npc.define" and handle.message.get("npc") == npc:
			return true
	return false


## Takes every waiting request out, oldest first (to send them).
func take_all() -> Array[NPCBridgeRequest]:
	var taken := _queued.duplicate()
	_queued.clear()
	return taken


## Fails every waiting request with [param code] and [param why] ([constant
## NPCBridgeRequest.NOT_CONNECTED] is marked retryable).
func fail_all(code: String, why: String) -> void:
	for handle in take_all():
		handle.fail(code, why, code == NPCBridgeRequest.NOT_CONNECTED)


## Fails, with [constant NPCBridgeRequest.NOT_CONNECTED], each request that has waited more than
## [param timeout_s] seconds at [param now_msec] ([method Time.get_ticks_msec]); 0: none.
func expire(now_msec: int, timeout_s: float) -> void:
	if timeout_s <= 0.0 or _queued.is_empty():
		return
	var limit := now_msec - int(timeout_s * 1000.0)
	var why := "no connection to the server within %.0f s" % timeout_s
	for handle in _queued.duplicate():
		if handle.last_activity_msec < limit:
			_queued.erase(handle)
			handle.fail(NPCBridgeRequest.NOT_CONNECTED, why, true)
