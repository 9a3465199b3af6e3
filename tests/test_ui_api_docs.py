"""The API docs page in a real Chromium that may reach nothing but this server."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from mailsink import Server

from .helpers import expect

pytestmark = pytest.mark.browser


def test_the_api_docs_render_the_operations_offline(page: Any, server: Server) -> None:
    elsewhere: list[str] = []
    violations: list[str] = []

    def only_this_server(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(server.url + "/api/docs")
    operation = page.locator(".opblock-summary-path", has_text="/api/v1/messages").first
    expect(operation).to_be_visible()
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() > 30
    page.locator(".opblock", has_text="/api/v1/chaos").first.locator(".opblock-summary").click()
    expect(page.locator(".opblock.is-open")).to_contain_text("fault-injection")
    assert elsewhere == []
    assert violations == []
