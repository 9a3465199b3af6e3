"""``GET/PUT /api/v1/chaos``: fault injection, in Mailpit's ``ChaosTriggers`` shape; with
``extras``, mailsink's own triggers and rules too."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import Field, field_validator

from ..smtp.chaos import API_NAMES, DEFAULT_CODES, RejectNext, Rule, Trigger
from .bodies import StrictBody
from .deps import sink_of
from .mailpit_paths import Extras, MailpitRoute

__all__ = ["ChaosTriggers", "router"]

router = APIRouter(prefix="/api/v1", tags=["testing"], route_class=MailpitRoute)

# The stages Mailpit has; the others (and RejectNext, Rules) are mailsink's.
_MAILPIT_KEYS = ("Sender", "Recipient", "Authentication")


def _valid_code(code: int) -> int:
    if code != 0 and not 400 <= code <= 599:
        raise ValueError("error code must be between 400 and 599")
    return code


def _shown(chaos: dict[str, Any], extras: bool) -> dict[str, Any]:
    return chaos if extras else {key: chaos[key] for key in _MAILPIT_KEYS}


class ChaosTrigger(StrictBody):
    """One stage's trigger (Mailpit's ``ChaosTrigger``)."""

    ErrorCode: int = Field(0, description="SMTP code, 400 to 599; 0 or absent: the default")
    Probability: int = Field(0, ge=0, le=100, description="Chance in percent, 0 to 100")

    _code = field_validator("ErrorCode")(_valid_code)


class ChaosRejectNext(StrictBody):
    """Refuse the next ``Count`` messages, at the end of DATA, with ``ErrorCode``."""

    Count: int = Field(0, ge=0, description="How many messages to refuse")
    ErrorCode: int = Field(451, description="SMTP code, 400 to 599")

    _code = field_validator("ErrorCode")(_valid_code)


class ChaosRule(StrictBody):
    """Refuse recipients matching a glob pattern, every time."""

    Recipient: str = Field(min_length=1, description="Glob pattern, e.g. `bounce@*`")
    ErrorCode: int = Field(550, description="SMTP code, 400 to 599")

    _code = field_validator("ErrorCode")(_valid_code)


class ChaosTriggers(StrictBody):
    """Body of ``PUT /api/v1/chaos``. Anything left out is switched off, as with Mailpit."""

    Sender: ChaosTrigger | None = Field(default=None, description="At MAIL FROM (default 451)")
    Recipient: ChaosTrigger | None = Field(default=None, description="At RCPT TO (default 451)")
    Authentication: ChaosTrigger | None = Field(default=None, description="At AUTH (default 535)")
    Connect: ChaosTrigger | None = Field(
        default=None, description="Instead of the greeting (default 421)"
    )
    Data: ChaosTrigger | None = Field(default=None, description="End of DATA (default 451)")
    RejectNext: ChaosRejectNext | None = None
    Rules: list[ChaosRule] = Field(default_factory=list)


@router.get(
    "/chaos",
    summary="Get the fault-injection settings",
    response_model=ChaosTriggers,
    response_model_exclude_unset=True,
)
def get_chaos(request: Request, extras: Extras = False) -> dict[str, Any]:
    return _shown(sink_of(request).chaos.as_json(), extras)


@router.put(
    "/chaos",
    summary="Set the fault-injection settings; returns them",
    response_model=ChaosTriggers,
    response_model_exclude_unset=True,
)
def set_chaos(
    request: Request, body: Annotated[ChaosTriggers | None, Body()] = None, extras: Extras = False
) -> dict[str, Any]:
    body = body or ChaosTriggers()
    triggers = {}
    for key, stage in API_NAMES.items():
        given: ChaosTrigger | None = getattr(body, key)
        if given is not None:
            triggers[stage] = Trigger(given.ErrorCode or DEFAULT_CODES[stage], given.Probability)
    reject = body.RejectNext
    chaos = sink_of(request).chaos
    chaos.replace(
        triggers,
        RejectNext(reject.Count, reject.ErrorCode or 451) if reject else None,
        [Rule(r.Recipient, r.ErrorCode or 550) for r in body.Rules],
    )
    return _shown(chaos.as_json(), extras)
