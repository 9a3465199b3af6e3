"""Checking a message's links over HTTP, on request: the link-check of Mailpit's API.

Links come from the HTML part (``a href``, stylesheet ``link href``, ``img src``) and the
text part (bare ``http(s)://`` URLs and ``<...>``-bracketed ones). Each is asked for with
HEAD (GET when a server does not do HEAD); a status of 400 or more, or no answer, is an error.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from http import HTTPStatus

import httpx

from .. import __version__
from ..parsing.parser import feed_bounded

__all__ = ["LinkResult", "check_links", "extract_links"]

_CONCURRENCY = 5
_TIMEOUT = 10.0
_URL = re.compile(r"\bhttps?://[-\w@:%+'!.~#?,&/=;]+", re.IGNORECASE)
_BRACKET_OPEN = re.compile(r"<https?://[^>\s]", re.IGNORECASE)
# Trailing punctuation ends a sentence more often than a URL.
_TRAILING = ".,;:!?'"


@dataclass(frozen=True)
class LinkResult:
    """The outcome for one link: ``status_code`` 0 means no HTTP answer at all."""

    url: str
    status_code: int
    status: str

    @property
    def failed(self) -> bool:
        """True for a 4xx/5xx status or no answer."""
        return self.status_code == 0 or self.status_code >= 400

    def as_json(self) -> dict[str, object]:
        """Mailpit's ``Link`` shape."""
        return {"URL": self.url, "StatusCode": self.status_code, "Status": self.status}


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag == "a":
            self._add(values.get("href", ""))
        elif tag == "img":
            self._add(values.get("src", ""))
        elif tag == "link" and "stylesheet" in values.get("rel", "").lower().split():
            self._add(values.get("href", ""))

    def _add(self, url: str) -> None:
        url = url.strip()
        if _URL.match(url):
            self.links.append(url)


def extract_links(html: str, text: str) -> list[str]:
    """Every distinct http(s) link in the HTML and text bodies, in order of appearance."""
    collector = _LinkCollector()
    feed_bounded(collector, html)
    found = list(collector.links)
    bracketed = [url.replace("\n", "").replace("\r", "") for url in _bracketed(text)]
    for match in _URL.finditer(text):
        start = match.start()
        if start and text[start - 1] == "<":
            continue  # taken whole by the bracketed form
        found.append(match.group(0).rstrip(_TRAILING))
    found += bracketed
    return list(dict.fromkeys(found))


def _bracketed(text: str) -> list[str]:
    """The URLs in ``<http...>``, as ``<(https?://[^>\\s][^>]*)>`` finds them.

    That search goes on to the end of the text from every ``<http`` without a ``>`` after
    it (34 s for 200 KB of them); a ``<`` can only close at the next ``>``, so each stretch
    up to a ``>`` is searched once.
    """
    found = []
    start = 0
    while (end := text.find(">", start)) >= 0:
        opening = _BRACKET_OPEN.search(text, start, end)
        if opening is not None:
            found.append(text[opening.start() + 1 : end])
        start = end + 1
    return found


async def check_links(links: list[str], follow_redirects: bool = False) -> list[LinkResult]:
    """Ask for each link (five at a time) and report its HTTP status, in the given order."""
    limit = asyncio.Semaphore(_CONCURRENCY)
    headers = {"User-Agent": f"mailsink/{__version__} link-check"}
    async with httpx.AsyncClient(
        follow_redirects=follow_redirects, timeout=_TIMEOUT, headers=headers, verify=True
    ) as client:

        async def one(url: str) -> LinkResult:
            async with limit:
                return await _check(client, url)

        return list(await asyncio.gather(*(one(url) for url in links)))


async def _check(client: httpx.AsyncClient, url: str) -> LinkResult:
    try:
        response = await client.head(url)
        if response.status_code in (405, 501):  # no HEAD here; ask for the headers of a GET
            async with client.stream("GET", url) as streamed:
                response = streamed
    except httpx.HTTPError as exc:
        return LinkResult(url, 0, _summary(exc))
    except ValueError as exc:  # a URL httpx cannot even build a request for
        return LinkResult(url, 0, str(exc) or "invalid URL")
    except Exception as exc:
        # A link is whatever the mail says; one httpx cannot use fails alone, never the
        # whole check. (A port past 65535 comes out of anyio as an ExceptionGroup.)
        return LinkResult(url, 0, f"invalid URL ({type(exc).__name__})")
    code = response.status_code
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = response.reason_phrase
    return LinkResult(url, code, phrase)


def _summary(exc: httpx.HTTPError) -> str:
    """The useful last part of an HTTP error, such as ``Connection refused``."""
    text = str(exc) or type(exc).__name__
    return text.rsplit("] ", 1)[-1].strip() or type(exc).__name__
