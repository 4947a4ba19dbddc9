"""Groq's error answers: the JSON error bodies, the headers of every answer, and the checks of a
chat request (``strict_groq``, ``api_key``, ``known_models_only``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .plan import echoed

if TYPE_CHECKING:
    from .server import FakeUpstream

#: status -> (error type, error code, default message), as Groq answers them
ERROR_INFO: dict[int, tuple[str, str, str]] = {
    400: ("invalid_request_error", "invalid_request_error", "Bad request"),
    401: ("invalid_request_error", "invalid_api_key", "Invalid API Key"),
    403: ("permissions_error", "forbidden", "Forbidden"),
    404: ("invalid_request_error", "model_not_found", "The model does not exist"),
    413: ("invalid_request_error", "request_too_large", "Request Entity Too Large"),
    422: ("invalid_request_error", "unprocessable_entity", "Unprocessable Entity"),
    424: ("invalid_request_error", "failed_dependency", "Failed Dependency"),
    429: ("tokens", "rate_limit_exceeded", ""),
    498: ("capacity_exceeded", "flex_tier_capacity_exceeded", "Flex tier capacity exceeded"),
    499: ("request_cancelled", "request_cancelled", "Request cancelled"),
    500: ("internal_server_error", "internal_server_error", "Internal Server Error"),
    502: ("internal_server_error", "bad_gateway", "Bad Gateway"),
    503: ("internal_server_error", "service_unavailable", "Service Unavailable"),
    524: ("internal_server_error", "timeout", "A timeout occurred"),
}


def format_duration(seconds: float) -> str:
    """Groq's duration format: ``"2m59.56s"``, ``"1s"``, ``"120ms"``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, secs = divmod(seconds, 60)
    sec_text = f"{secs:.2f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{sec_text}" if minutes else sec_text


def base_headers(
    fake: FakeUpstream,
    extra: Mapping[str, str] | None = None,
    echo: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Headers of every chat/models answer: the rate-limit headers, a request id, the echoed
    request headers (``x-echo-<name>``) and ``extra``."""
    headers = dict(fake.rate_limit_headers)
    headers["x-request-id"] = "req_" + uuid.uuid4().hex[:26]
    if echo:
        headers.update({f"x-echo-{name}": value for name, value in echo.items()})
    if extra:
        headers.update(extra)
    return headers


def error_response(
    fake: FakeUpstream,
    status: int,
    message: str | None = None,
    *,
    model: str = "",
    retry_after: float | None = None,
    headers: Mapping[str, str] | None = None,
    param: str | None = None,
    echo: Mapping[str, str] | None = None,
) -> web.Response:
    """Groq's JSON error answer for ``status`` (counted in ``fake.errors``)."""
    err_type, code, default_message = ERROR_INFO.get(
        status, ("internal_server_error", "error", f"HTTP {status}")
    )
    if status == 429 and not message:
        wait = retry_after if retry_after is not None else 60.36
        message = (
            f"Rate limit reached for model `{model}` in organization `org_fake` service "
            "tier `on_demand` on tokens per minute (TPM): Limit 6000, Used 6000, "
            f"Requested 100. Please try again in {format_duration(wait)}. Need more "
            "tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing"
        )
    error: dict[str, Any] = {
        "message": echoed(message or default_message, echo),
        "type": err_type,
    }
    if param is not None:
        error["param"] = param
    error["code"] = code
    out_headers = base_headers(fake, headers, echo)
    if retry_after is not None:
        out_headers["retry-after"] = f"{retry_after:g}"
    fake.errors += 1
    return web.json_response({"error": error}, status=status, headers=out_headers)


def validate(
    fake: FakeUpstream, request: web.Request, body: Any, echo: Mapping[str, str] | None
) -> web.Response | None:
    """The error answer for a chat request Groq would refuse, else None."""
    if fake.api_key is not None:
        if request.headers.get("authorization") != f"Bearer {fake.api_key}":
            return error_response(fake, 401, echo=echo)
    if not isinstance(body, dict):
        return error_response(fake, 400, "request body must be a JSON object", echo=echo)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return error_response(fake, 400, "property 'model' is missing", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return error_response(fake, 400, "property 'messages' is missing", param="messages")
    if fake.known_models_only and model not in fake.models:
        return error_response(
            fake, 404, f"The model `{model}` does not exist or you do not have access to it."
        )
    if fake.strict_groq:
        for key in ("logprobs", "logit_bias", "top_logprobs"):
            if body.get(key) not in (None, False):
                return error_response(fake, 400, f"'{key}' : not supported by the model", param=key)
        if body.get("n") not in (None, 1):
            return error_response(fake, 400, "'n' : number must be at most 1", param="n")
        for i, message in enumerate(messages):
            if isinstance(message, dict) and "name" in message:
                return error_response(
                    fake,
                    400,
                    f"'messages.{i}' : property 'name' is unsupported",
                    param=f"messages.{i}.name",
                )
    return None
