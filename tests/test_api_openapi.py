"""The OpenAPI document says what the server answers: each operation's documented responses
hold the status the server really gives a parameter or body it cannot take."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mailsink import Server
from mailsink.config import Settings

# A value of the right kind in each path parameter, so that one bad value is tried at a time.
_GOOD = {"PartID": "1", "index": "0", "Tag": "some-tag"}


@pytest.fixture(scope="module")
def stocked() -> Iterator[tuple[Server, str]]:
    """One server for the module, holding one message (whose ID is given)."""
    with Server(Settings(smtp="127.0.0.1:0", http="127.0.0.1:0")) as server:
        host, port = server.smtp_address
        with smtplib.SMTP(host, port, timeout=30) as client:
            client.sendmail("a@example.test", ["b@example.test"], b"Subject: s\r\n\r\nx\r\n")
        message = httpx.get(f"{server.url}/api/v1/messages").json()["messages"][0]
        yield server, message["ID"]


def bad_values(parameter: dict[str, Any]) -> list[str]:
    """Values the parameter's schema rules out (or, for a bare string, that name nothing)."""
    schema = parameter.get("schema", {})
    kind = schema.get("type")
    if kind in ("integer", "number"):
        values = ["not-a-number"]
        values += [str(schema["minimum"] - 1)] if "minimum" in schema else []
        values += [str(schema["maximum"] + 1)] if "maximum" in schema else []
        return values
    if kind == "boolean":
        return ["perhaps"]
    values = ["no-such-thing"]
    values += ["x" * (schema["maxLength"] + 1)] if "maxLength" in schema else []
    values += ["not/a.part"] if "pattern" in schema else []
    return values


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in doc["paths"].items()
        for method, operation in methods.items()
        if path != "/api/v1/events"  # a stream that stays open
    ]


def call(
    api: httpx.Client, method: str, path: str, path_values: dict[str, str], **kwargs: Any
) -> int:
    for name, value in path_values.items():
        path = path.replace("{" + name + "}", value)
    return api.request(method, path, **kwargs).status_code


def test_every_status_given_for_a_bad_parameter_or_body_is_documented(
    stocked: tuple[Server, str],
) -> None:
    server, message_id = stocked
    with httpx.Client(base_url=server.url, timeout=30) as api:
        doc = api.get("/api/v1/openapi.json").json()
        tried = 0
        undocumented = []
        for method, path, operation in operations(doc):
            parameters = operation.get("parameters", [])
            good = {
                p["name"]: _GOOD.get(p["name"], message_id) for p in parameters if p["in"] == "path"
            }
            # A wait that is not what is tried ends at once.
            quick = {"timeout": "0"} if any(p["name"] == "timeout" for p in parameters) else {}
            answers = set()
            for parameter in parameters:
                for value in bad_values(parameter):
                    if parameter["in"] == "path":
                        values = {**good, parameter["name"]: value}
                        answers.add(call(api, method, path, values, params=quick))
                    elif parameter["in"] == "query":
                        query = {**quick, parameter["name"]: value}
                        answers.add(call(api, method, path, good, params=query))
            if "requestBody" in operation:
                json_type = {"content-type": "application/json"}
                for body in (b"{", b"[1, 2]"):
                    answers.add(call(api, method, path, good, content=body, headers=json_type))
            tried += len(answers)
            assert all(code < 500 for code in answers), (method, path, answers)
            missing = {str(code) for code in answers} - set(operation["responses"])
            if missing:
                undocumented.append(f"{method} {path}: {sorted(missing)}")
        assert tried > 40
        assert undocumented == []


def test_errors_are_documented_as_the_server_shapes_them(stocked: tuple[Server, str]) -> None:
    server, _ = stocked
    doc = httpx.get(f"{server.url}/api/v1/openapi.json").json()
    for method, path, operation in operations(doc):
        assert "422" not in operation["responses"], (method, path)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    error = doc["components"]["schemas"]["Error"]
    # mailsink's own paths: {"Error": ...}.
    answer = httpx.get(f"{server.url}/api/v1/wait", params={"timeout": "lots"})
    assert answer.status_code == 400
    assert set(answer.json()) == set(error["required"]) == {"Error"}
    waiting = doc["paths"]["/api/v1/wait"]["get"]["responses"]["400"]
    assert waiting["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    # Mailpit's paths: the message in plain text, as Mailpit writes it.
    answer = httpx.get(f"{server.url}/api/v1/messages", params={"limit": "lots"})
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/plain") and "limit" in answer.text
    listing = doc["paths"]["/api/v1/messages"]["get"]["responses"]["400"]
    assert listing["content"] == {"text/plain": {"schema": {"type": "string"}}}
    unknown = doc["paths"]["/api/v1/message/{ID}"]["get"]["responses"]["404"]
    assert unknown["content"] == {"text/plain": {"schema": {"type": "string"}}}
