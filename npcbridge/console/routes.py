"""The console's HTTP answers: the page's static files and the admin endpoints under
``/console/api/`` (registered ``admin=True``: loopback or ``server.token`` only, and never
cross-origin). No answer carries the upstream API key or any other secret of the config."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..builtin.persona import persona_from_card
from ..config import one_line
from ..plugin.http import HttpRequest, HttpResponse
from ..protocol.messages import Persona
from .export import persona_card, persona_fields, persona_toml
from .snapshot import snapshot

if TYPE_CHECKING:
    from ..plugin.api import PluginAPI
    from .records import TurnRing
    from .settings import ConsoleSettings
    from .spend import SpendTable

API = "/console/api"
#: the page's files (inside the package: nothing is built at install time)
_JS = "text/javascript; charset=utf-8"
STATIC = {
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    # ES modules: console.js imports the others
    **{
        name: _JS
        for name in (
            "console.js",
            "dom.js",
            "server.js",
            "msgpack.js",
            "shared.js",
            "persona.js",
            "talk.js",
            "inspector.js",
            "metrics.js",
            "memory.js",
        )
    },
}
#: the page loads only its own files and talks only to its own server
PAGE_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        "frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-cache"),
)


def json_response(body: Any, status: int = 200) -> HttpResponse:
    """A JSON answer that no cache keeps."""
    return HttpResponse(
        status,
        json.dumps(body, ensure_ascii=False).encode(),
        headers=(("Cache-Control", "no-store"),),
    )


def error_response(status: int, message: str) -> HttpResponse:
    """A JSON error in the protocol's words (the sent value is never echoed)."""
    return json_response({"error": "bad_request", "message": message}, status)


def _json_body(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("the body is not JSON") from None


def static_file(name: str) -> HttpResponse:
    """One of the page's files."""
    body = resources.files(__package__).joinpath("static", name).read_bytes()
    return HttpResponse(200, body, STATIC[name], PAGE_HEADERS)


class ConsoleRoutes:
    """The routes of one server's console."""

    def __init__(
        self, api: PluginAPI, settings: ConsoleSettings, ring: TurnRing, spend: SpendTable
    ) -> None:
        self.api = api
        self.settings = settings
        self.ring = ring
        self.spend = spend

    def register(self, register: Callable[..., None]) -> None:
        """Register every route through ``npcbridge_register_routes``'s ``register``."""
        page = self.page
        register("/", page)
        register("/console/", page)
        for name in STATIC:
            register(f"/console/{name}", lambda request, name=name: static_file(name))
        register(f"{API}/overview", self.overview, admin=True)
        register(f"{API}/turns", self.turns, admin=True)
        register(f"{API}/turns/", self.turn, prefix=True, admin=True)
        register(f"{API}/metrics", self.metrics, admin=True)
        register(f"{API}/card", self.card, methods=("POST",), admin=True)
        register(f"{API}/export", self.export, methods=("POST",), admin=True)

    def page(self, request: HttpRequest) -> HttpResponse:
        """The page (public: it holds no data; it asks for the token when it needs one)."""
        return static_file("index.html")

    def budgets(self) -> dict[str, Any]:
        """The configured limits the spend view compares against."""
        budget = self.api.config.budget
        return {
            "global": budget.global_usd_per_day,
            "player": budget.per_player_usd_per_day,
            "npc": {
                key: persona.budget_usd_per_day
                for key, persona in self.api.config.npcs.items()
                if persona.budget_usd_per_day is not None
            },
        }

    def overview(self, request: HttpRequest) -> HttpResponse:
        """What the page needs to start: models, config NPCs, what the inspector keeps."""
        api = self.api
        models = [
            {
                "id": entry.id,
                "aliases": list(entry.aliases),
                "tier": entry.tier,
                "provider": entry.provider,
                "input_usd_per_m": entry.input_usd_per_m,
                "output_usd_per_m": entry.output_usd_per_m,
            }
            for entry in api.catalog.entries
        ]
        return json_response(
            {
                "offline": api.offline,
                "default_model": api.default_model,
                "models": models,
                "npcs": {key: persona_fields(p) for key, p in api.config.npcs.items()},
                "inspector": {
                    "capture_games": self.settings.capture_games,
                    "ring_size": self.settings.ring_size,
                },
                "budgets": self.budgets(),
                "token_required": api.config.server.token is not None,
            }
        )

    def turns(self, request: HttpRequest) -> HttpResponse:
        """Summaries of the kept turn records, newest first (``?after=<id>``: newer ones)."""
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            return error_response(400, "after must be an integer")
        return json_response({"turns": self.ring.since(after)})

    def turn(self, request: HttpRequest) -> HttpResponse:
        """``/console/api/turns/<id>``: one whole record."""
        tail = request.path.removeprefix(f"{API}/turns/")
        if not tail.isdigit():
            return error_response(400, "the turn id must be a number")
        record = self.ring.get(int(tail))
        if record is None:
            return error_response(404, "no such turn (the inspector keeps the latest ones)")
        return json_response(record)

    def metrics(self, request: HttpRequest) -> HttpResponse:
        """The live figures: the metrics registry's, and spend against the budgets."""
        body = snapshot(self.api.metrics.registry)
        body["spend"] = self.spend.view(self.budgets())
        return json_response(body)

    def card(self, request: HttpRequest) -> HttpResponse:
        """A Character Card V2 (the JSON body) as the persona the server makes of it."""
        try:
            body = _json_body(request)
            if not isinstance(body, dict):
                raise ValueError("the card must be a JSON object")
            persona = persona_from_card(body)
        except ValidationError as exc:
            return error_response(400, one_line(exc, "card"))
        except ValueError as exc:
            return error_response(400, str(exc).splitlines()[0])
        return json_response({"persona": persona_fields(persona)})

    def export(self, request: HttpRequest) -> HttpResponse:
        """``{"npc": key, "persona": {...}}`` as ``?format=toml`` (``[npcs.<key>]``) or
        ``?format=card`` (Character Card V2 JSON)."""
        fmt = request.query.get("format", "toml")
        if fmt not in ("toml", "card"):
            return error_response(400, "format must be toml or card")
        try:
            body = _json_body(request)
            if not isinstance(body, dict) or not isinstance(body.get("npc"), str):
                raise ValueError('the body must be {"npc": key, "persona": {...}}')
            persona = Persona.model_validate(body.get("persona"))
        except ValidationError as exc:
            return error_response(400, one_line(exc, "persona"))
        except ValueError as exc:
            return error_response(400, str(exc))
        key = body["npc"].strip() or "npc"
        if fmt == "card":
            return json_response(persona_card(persona))
        return HttpResponse(200, persona_toml(key, persona).encode(), "application/toml")
