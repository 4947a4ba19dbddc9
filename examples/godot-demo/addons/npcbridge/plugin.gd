@tool
extends EditorPlugin
## Editor side of the addon: enabling it registers the [code]NPCBridge[/code] autoload and the
## npcbridge project settings; disabling it removes the autoload again.

## Name of the autoload the plugin registers.
const AUTOLOAD_NAME := "NPCBridge"
## Script of that autoload.
const AUTOLOAD_PATH := "res://addons/npcbridge/npc_bridge.gd"
## The project settings the plugin registers (preloaded: the class cache may not be ready yet).
const Settings := preload("res://addons/npcbridge/settings.gd")


func _enable_plugin() -> void:
	add_autoload_singleton(AUTOLOAD_NAME, AUTOLOAD_PATH)
	_add_settings()


func _disable_plugin() -> void:
	remove_autoload_singleton(AUTOLOAD_NAME)


func _enter_tree() -> void:
	# Also make the settings visible when the plugin was enabled in an earlier session.
	_add_settings()


func _add_settings() -> void:
	var changed := false
	for row in Settings.all():
		var setting: String = row[0]
		if not ProjectSettings.has_setting(setting):
			ProjectSettings.set_setting(setting, row[1])
			changed = true
		ProjectSettings.set_initial_value(setting, row[1])
		ProjectSettings.set_as_basic(setting, true)
		var info := {"name": setting, "type": typeof(row[1]), "hint": row[2], "hint_string": row[3]}
		ProjectSettings.add_property_info(info)
	if changed:
		ProjectSettings.save()
