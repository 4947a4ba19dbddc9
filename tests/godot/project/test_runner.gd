extends Node
## Runs every test_*() method of every res://tests/test_*.gd script, prints one
## "NPCB_RESULT {json}" line per test, then quits with 0 (all passed) or 1.

const TESTS_DIR := "res://tests"
const RESULT_PREFIX := "NPCB_RESULT "
const DEFAULT_TIMEOUT_S := 30.0

var _options: Dictionary = {}


func _ready() -> void:
	_options = _parse_args(OS.get_cmdline_user_args())
	print(
		"npcbridge test runner: Godot %s, options %s" % [Engine.get_version_info().string, _options]
	)
	var failed := await _run_all()
	print("NPCB_DONE %d" % failed)
	get_tree().quit(1 if failed > 0 else 0)


func _parse_args(args: PackedStringArray) -> Dictionary:
	var out := {}
	for arg in args:
		if arg.begins_with("--") and "=" in arg:
			var key := arg.substr(2, arg.find("=") - 2)
			out[key] = arg.substr(arg.find("=") + 1)
	return out


func _run_all() -> int:
	var only: PackedStringArray = []
	if _options.has("only"):
		only = String(_options["only"]).split(",", false)
	var files: Array[String] = []
	for file in DirAccess.get_files_at(TESTS_DIR):
		if file.begins_with("test_") and file.ends_with(".gd"):
			files.append(file)
	files.sort()
	var failed := 0
	for file in files:
		if not only.is_empty() and file.get_basename() not in only:
			continue
		var script: GDScript = load(TESTS_DIR.path_join(file))
		if script == null or not script.can_instantiate():
			_report(file, "<load>", ["could not load the script"], "", 0)
			failed += 1
			continue
		for method in script.get_script_method_list():
			var name: String = method["name"]
			if not name.begins_with("test_"):
				continue
			var test: NPCBTestCase = script.new()
			test.name = file.get_basename()
			test.options = _options
			add_child(test)
			var state := {"done": false}
			var started := Time.get_ticks_msec()
			_run_one(test, name, state)
			var timeout_s: float = test.get_meta("timeout_s", DEFAULT_TIMEOUT_S)
			while not state["done"] and Time.get_ticks_msec() - started < timeout_s * 1000.0:
				await get_tree().process_frame
			var failures := test.failures.duplicate()
			if not state["done"]:
				failures.append("timed out after %.0f s" % timeout_s)
			_report(file, name, failures, test.skipped, Time.get_ticks_msec() - started)
			if not failures.is_empty():
				failed += 1
			test.queue_free()
			await get_tree().process_frame
	return failed


func _run_one(test: NPCBTestCase, method: String, state: Dictionary) -> void:
	await test.call(method)
	state["done"] = true


func _report(file: String, test: String, failures: Array, skipped: String, ms: int) -> void:
	var record := {
		"file": file,
		"test": test,
		"ok": failures.is_empty(),
		"failures": failures,
		"skipped": skipped,
		"ms": ms,
	}
	print(RESULT_PREFIX + JSON.stringify(record))
