"""Opt-in OpenTelemetry traces of turns: one ``chat {model}`` span per turn that went upstream,
with the GenAI semantic conventions' ``gen_ai.*`` attributes, exported over OTLP/HTTP when
``[extra.tracing]`` ``endpoint`` is set. Needs the ``otel`` extra
(``pip install 'npcbridge[otel]'``); off, it costs one attribute test per turn. See
docs/console.md ("Traces")."""
