extends NPCBTestCase
## The engine starts, runs GDScript from the pack and reports results.


func test_engine_runs() -> void:
	check_eq(Engine.get_version_info()["major"], 4, "engine major version")
	check_eq(Engine.get_version_info()["minor"], 6, "engine minor version")
	check(OS.has_feature("web"), "runs in the web build")
	await get_tree().process_frame
	check(FileAccess.file_exists("res://vectors/index.json"), "vectors are packed")
