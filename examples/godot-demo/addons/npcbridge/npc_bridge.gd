extends NPCBridgeConnection
## The [code]NPCBridge[/code] autoload: one shared connection to the npcbridge server, configured
## from the project settings (see [NPCBridgeSettings]). [NPCSpeaker] nodes use it unless they
## are given another [NPCBridgeConnection].
## [codeblock]
## NPCBridge.connected.connect(func(welcome: Dictionary) -> void: print(welcome["server"]))
## var reply := await NPCBridge.request("quest.generate", {"theme": "a haunted mine"}).wait()
## [/codeblock]


func _ready() -> void:
	process_mode = Node.PROCESS_MODE_ALWAYS
	url = NPCBridgeSettings.read(NPCBridgeSettings.URL)
	token = NPCBridgeSettings.read(NPCBridgeSettings.TOKEN)
	if NPCBridgeSettings.read(NPCBridgeSettings.AUTOCONNECT):
		connect_to_server()
