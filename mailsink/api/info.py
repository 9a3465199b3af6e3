"""``GET /api/v1/info`` and ``GET /api/v1/webui``: Mailpit's application information shapes."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

from .. import __version__
from ..outbound.relay import Relay
from ..sink import Sink
from .deps import sink_of
from .mailpit_paths import MailpitRoute

__all__ = ["app_information", "router", "webui_configuration"]

router = APIRouter(prefix="/api/v1", tags=["application"], route_class=MailpitRoute)


def _memory() -> int:
    """Resident memory of this process in bytes (peak where the current figure is unknown)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource  # not on Windows
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def app_information(sink: Sink) -> dict[str, Any]:
    """Mailpit's ``AppInformation``, from the store and the server's running counters."""
    figures = sink.store.figures()
    stats = sink.stats
    return {
        "Version": __version__,
        # mailsink never calls out to look for a newer release; Mailpit says the same
        # when its version check is turned off.
        "LatestVersion": "disabled",
        "Database": sink.store.location,
        "DatabaseSize": figures.disk_bytes,
        "Messages": figures.total,
        "Unread": figures.unread,
        "Tags": figures.tags,
        "RuntimeStats": {
            "Memory": _memory(),
            "MessagesDeleted": stats.messages_deleted,
            "SMTPAccepted": stats.smtp_accepted,
            "SMTPAcceptedSize": stats.smtp_accepted_bytes,
            "SMTPIgnored": 0,
            "SMTPRejected": stats.smtp_rejected,
            "Uptime": int(stats.uptime),
        },
    }


def webui_configuration(sink: Sink) -> dict[str, Any]:
    """Mailpit's ``WebUIConfiguration``: what the UI may offer (release, chaos, ...)."""
    relay = Relay.from_settings(sink.settings)
    allowed = relay.allowed_recipients if relay else ""
    return {
        "Label": "",
        "MessageRelay": {
            "Enabled": relay is not None,
            "SMTPServer": relay.address if relay else "",
            "ReturnPath": "",
            "AllowedRecipients": allowed,
            "BlockedRecipients": "",
            "OverrideFrom": "",
            "PreserveMessageIDs": False,
            # Left out of Mailpit's document but still in its answer: the older name of
            # AllowedRecipients, which Mailpit's own web UI of that time reads.
            "RecipientAllowlist": allowed,
        },
        "SpamAssassin": bool(sink.settings.spamassassin),
        # /api/v1/chaos always works here (Mailpit needs --enable-chaos for it).
        "ChaosEnabled": True,
        "DuplicatesIgnored": False,
        "HideDeleteAllButton": False,
    }


@router.get("/info", summary="Application information: version, database, message counts")
def get_info(request: Request) -> dict[str, Any]:
    return app_information(sink_of(request))


@router.get("/webui", summary="Web UI configuration: whether release and chaos are on")
def get_webui(request: Request) -> dict[str, Any]:
    return webui_configuration(sink_of(request))
