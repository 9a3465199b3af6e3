"""``/api/v2/jim``: MailHog's chaos monkey, turned on, changed and off as MailHog's API v2 does.

MailHog's answers, status for status: ``GET`` gives Jim's settings, or 404 while he is off;
``POST`` invites him (201), or 400 if he is already on; ``PUT`` changes him (200), or 404
while he is off; ``DELETE`` sends him away (200), or 404 while he is off.

Bodies are read as MailHog reads them: the first JSON value, decoded into a Jim whose every
field starts at 0, so a field left out is 0, not its previous value. ``PUT`` answers 400 to a
body that cannot be read and keeps Jim as he was; ``POST`` then brings him with the settings
he last had (MailHog's defaults, or the ``--jim`` setting, the first time).
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import Field, ValidationError

from ..smtp.chaos import Jim
from .bodies import RequestBody
from .deps import sink_of

__all__ = ["JimSettings", "router"]

router = APIRouter(tags=["MailHog"])

_PATH = "/api/v2/jim"
_OFF = "Jim is not here: POST /api/v2/jim to invite him"


def _number(description: str) -> Any:
    return Field(0.0, allow_inf_nan=False, description=description)


class JimSettings(RequestBody):
    """Jim's settings (MailHog's ``monkey.Jim``): chances from 0 to 1, speeds in bytes per
    second. A field left out is 0."""

    DisconnectChance: float = _number("Chance of dropping the connection at each read")
    AcceptChance: float = _number("Chance of accepting a connection")
    LinkSpeedAffect: float = _number("Chance of slowing a connection down")
    LinkSpeedMin: float = _number("Slowest link speed, bytes per second")
    LinkSpeedMax: float = _number("Fastest link speed, bytes per second")
    RejectSenderChance: float = _number("Chance of refusing MAIL FROM (550)")
    RejectRecipientChance: float = _number("Chance of refusing RCPT TO (550)")
    RejectAuthChance: float = _number("Chance of refusing AUTH (500)")


_BODY = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": JimSettings.model_json_schema()}},
    }
}
_SETTINGS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Jim's settings",
        "content": {"application/json": {"schema": JimSettings.model_json_schema()}},
    }
}


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ABSENT = _error("Jim is off")
_UNREADABLE = _error("Jim's settings cannot be read (PUT), or Jim is already on (POST)")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode(body: bytes) -> Jim:
    """Jim from a body, as MailHog's ``json.Decoder`` fills a zero ``Jim``; a ValueError
    that says why when it cannot."""
    text = body.decode("utf-8", "replace").lstrip(" \t\r\n")
    if not text:
        raise ValueError("no body: send Jim's settings as a JSON object")
    decoder = json.JSONDecoder(parse_constant=_refuse_constant)
    value, _ = decoder.raw_decode(text)  # what follows the first value is not read
    if value is None:
        return Jim(**{f.name: 0.0 for f in dataclasses.fields(Jim)})
    if not isinstance(value, dict):
        raise ValueError("expected Jim's settings as a JSON object")
    try:
        settings = JimSettings.model_validate(value, strict=True)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise ValueError(f"{where}: {exc.errors()[0]['msg']}") from None
    return Jim(**settings.model_dump())


def _go_number(value: float) -> str:
    """A float as Go's encoding/json writes it: ``1024``, ``0.005``, ``1e-7``, ``1e+21``."""
    size = abs(value)
    if size != 0 and (size < 1e-6 or size >= 1e21):
        return repr(value).replace("e-0", "e-").replace("e+0", "e+")
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _settings_json(jim: Jim) -> bytes:
    fields = dataclasses.asdict(jim)
    return ("{" + ",".join(f'"{k}":{_go_number(v)}' for k, v in fields.items()) + "}").encode()


@router.get(_PATH, summary="MailHog: Jim's settings (404 while he is off)", responses=_SETTINGS)
def get_jim(request: Request) -> Response:
    jim = sink_of(request).chaos.jim
    if jim is None:
        raise HTTPException(404, _OFF)
    return Response(_settings_json(jim), media_type="application/json")


@router.post(
    _PATH,
    summary="MailHog: invite Jim (201), with settings or his last ones; 400 if he is on",
    status_code=201,
    response_class=Response,
    responses={400: _UNREADABLE},
    openapi_extra=_BODY,
)
async def invite_jim(request: Request) -> Response:
    chaos = sink_of(request).chaos
    if chaos.jim is not None:
        raise HTTPException(400, "Jim is already here: PUT /api/v2/jim to change him")
    try:
        jim = _decode(await request.body())
    except ValueError:
        jim = chaos.invited  # MailHog ignores a body it cannot read here
    chaos.set_jim(jim)
    return Response(status_code=201)


@router.put(
    _PATH,
    summary="MailHog: change Jim's settings; 404 while he is off",
    response_class=Response,
    responses={400: _UNREADABLE, 404: _ABSENT},
    openapi_extra=_BODY,
)
async def change_jim(request: Request) -> Response:
    chaos = sink_of(request).chaos
    if chaos.jim is None:
        raise HTTPException(404, _OFF)
    try:
        jim = _decode(await request.body())
    except ValueError as exc:
        raise HTTPException(400, f"Jim's settings: {exc}") from None
    chaos.set_jim(jim)
    return Response(status_code=200)


@router.delete(
    _PATH,
    summary="MailHog: send Jim away; 404 while he is off",
    response_class=Response,
    responses={404: _ABSENT},
)
def dismiss_jim(request: Request) -> Response:
    chaos = sink_of(request).chaos
    if chaos.jim is None:
        raise HTTPException(404, _OFF)
    chaos.set_jim(None)
    return Response(status_code=200)
