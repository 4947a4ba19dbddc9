class_name NPCBTestCase
extends Node
## Base class of the GDScript tests: checks that record failures instead of asserting
## (assert() is compiled out of the release web template), plus waiting helpers.

## Failure messages of the test method that is running.
var failures: Array[String] = []
## Why the test was skipped (empty when it ran).
var skipped: String = ""
## Options from the command line: "ws" (server URL), "harness" (harness base URL), ...
var options: Dictionary = {}


## Deep equality that also compares types (so 1 != 1.0 and "a" != &"a").
static func same(a: Variant, b: Variant) -> bool:
	if typeof(a) != typeof(b):
		return false
	if a is Dictionary:
		var da: Dictionary = a
		var db: Dictionary = b
		if da.size() != db.size():
			return false
		for key: Variant in da:
			if not db.has(key) or not same(da[key], db[key]):
				return false
		return true
	if a is Array:
		var aa: Array = a
		var ab: Array = b
		if aa.size() != ab.size():
			return false
		for i in aa.size():
			if not same(aa[i], ab[i]):
				return false
		return true
	if a is float and is_nan(a) and is_nan(b):
		return true
	return a == b


## The value a sender holds for tagged JSON (tests/vectors): [code]{"$float": x}[/code] is a
## [float], [code]{"$bin": "<hex>"}[/code] a [PackedByteArray], any other whole JSON number an
## [int] (JSON has one number type), null stays.
static func untag(tagged: Variant) -> Variant:
	if tagged is Dictionary and tagged.size() == 1 and tagged.has("$float"):
		return float(tagged["$float"])
	if tagged is Dictionary and tagged.size() == 1 and tagged.has("$bin"):
		return String(tagged["$bin"]).hex_decode()
	if tagged is float:
		return int(tagged) if tagged == floorf(tagged) else tagged
	if tagged is Dictionary:
		var out := {}
		for key: Variant in tagged:
			out[key] = untag(tagged[key])
		return out
	if tagged is Array:
		return (tagged as Array).map(untag)
	return tagged


## Marks the test skipped unless a server URL was given; returns true when there is one.
func require_server() -> bool:
	if options.get("ws", "") == "":
		skipped = "no npcbridge server (--ws) was given"
		return false
	return true


## A new [NPCBridgeConnection] (child of this test) for the test server: URL and token from the
## options, quick reconnects. Not connected yet.
func new_connection() -> NPCBridgeConnection:
	var bridge := NPCBridgeConnection.new()
	bridge.url = options.get("ws", "")
	bridge.token = options.get("token", "")
	bridge.reconnect_min_s = 0.2
	bridge.reconnect_max_s = 1.0
	add_child(bridge)
	return bridge


## Records a failure unless [param condition] holds; returns [param condition].
func check(condition: bool, what: String) -> bool:
	if not condition:
		failures.append(what)
	return condition


## Records a failure unless [param actual] deeply equals [param expected] (types included).
func check_eq(actual: Variant, expected: Variant, what: String) -> bool:
	return check(
		same(actual, expected), "%s: expected %s, got %s" % [what, str(expected), str(actual)]
	)


## Awaits frames until [param condition] returns true or [param timeout_s] seconds pass.
func wait_until(condition: Callable, timeout_s: float = 10.0) -> bool:
	var deadline := Time.get_ticks_msec() + int(timeout_s * 1000.0)
	while not condition.call():
		if Time.get_ticks_msec() > deadline:
			return false
		await get_tree().process_frame
	return true


## Awaits [param seconds] of game time.
func wait_seconds(seconds: float) -> void:
	await get_tree().create_timer(seconds).timeout
