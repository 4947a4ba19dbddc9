"""The plugin system: hook specs with their call modes (``specs``), the plugin manager that loads
plugins and dispatches by call mode (``manager``), the registry filled by the registration hooks
(``registry``), the checks on what hooks return (``guard``) and the API plugins type against
(``api``). See docs/plugins.md."""
