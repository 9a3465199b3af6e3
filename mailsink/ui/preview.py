"""Captured HTML made safe to look at: ``cid:`` links to part URLs, nh3, and the preview's CSP.

Three layers, each enough on its own against script: the HTML is sanitised with nh3 (no
script, no event handlers, no ``javascript:`` URLs, no forms, no ``<meta refresh>``); the
document is served with a Content-Security-Policy whose ``sandbox`` directive puts it in an
opaque origin with scripts, forms and top navigation disabled; and the UI embeds it in an
``<iframe sandbox>`` without ``allow-scripts`` or ``allow-same-origin``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape
from html.parser import HTMLParser
from urllib.parse import quote, unquote, urlsplit

import nh3

from ..parsing.parser import Part

__all__ = [
    "Preview",
    "content_ids",
    "data_urls",
    "part_path",
    "preview_csp",
    "rewrite_cids",
    "sanitise",
    "wrap_body",
]

# Tags an email's layout needs on top of nh3's defaults; ``style`` elements are what most
# HTML mail is styled with, and CSS cannot run script in any current browser.
_EXTRA_TAGS = {"style", "font", "link", "big", "u", "address", "section", "main", "tfoot"}
# Dropped together with their content: their text is never meant to be read as body text.
_DROP_WITH_CONTENT = {
    "script",
    "title",
    "template",
    "noscript",
    "textarea",
    "select",
    "object",
    "embed",
    "iframe",
    "frameset",
    "svg",
    "math",
    "xml",
}
_GENERIC_ATTRIBUTES = {
    "style",
    "class",
    "id",
    "align",
    "valign",
    "width",
    "height",
    "bgcolor",
    "border",
    "dir",
    "lang",
    "title",
    "role",
}
_TAG_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "name"},
    "img": {"src", "alt", "hspace", "vspace"},
    "table": {"cellpadding", "cellspacing", "background", "frame", "rules", "summary"},
    "td": {"colspan", "rowspan", "nowrap", "background", "headers", "scope"},
    "th": {"colspan", "rowspan", "nowrap", "background", "headers", "scope"},
    "tr": {"background"},
    "font": {"color", "face", "size"},
    "link": {"href", "media", "type"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value", "type"},
    "hr": {"size", "noshade", "color"},
    "blockquote": {"cite", "type"},
    "time": {"datetime"},
    "style": {"type", "media"},
}
_URL_ATTRIBUTES = {"href", "src", "background", "cite", "action", "poster", "longdesc"}
_LINK_SCHEMES = {"http", "https", "mailto", "tel"}
_RESOURCE_SCHEMES = {"http", "https"}

_IMAGE_TYPE = re.compile(r"image/[a-z0-9.+-]+")
_PART_ID = re.compile(r"[0-9]+(?:\.[0-9]+)*")
# bgcolor="#f3f4f6" and text="navy" become CSS: only a colour's name or hex digits pass.
_COLOUR = re.compile(r"#?[0-9A-Za-z]{1,20}")
_BODY_TAG = re.compile(r"<body\b", re.IGNORECASE)
# The most of a document, from its <body, read for the tag's attributes: the parser is
# quadratic on a tag that never closes, and a real <body> tag is far shorter.
_BODY_TAG_CHARS = 4 * 1024
_BODY_ATTRIBUTES = {"style", "class", "id", "dir", "lang", "align"}
_CID = re.compile(r"""cid:([^\s"'()<>]+)""", re.IGNORECASE)
_REMOTE_CSS = re.compile(r"""url\(\s*['"]?\s*(?:https?:)?//|@import""", re.IGNORECASE)


@dataclass(frozen=True)
class Preview:
    """A sanitised HTML fragment and whether it asks for anything remote."""

    html: str
    remote: bool


def part_path(message_id: str, part_id: str) -> str:
    """A part's URL relative to a document under ``view/``, where the previews are served."""
    return f"../api/v1/message/{quote(message_id, safe='')}/part/{quote(part_id, safe='.')}"


def content_ids(message_id: str, parts: Iterable[Part]) -> dict[str, str]:
    """Each part's Content-ID mapped to the URL that serves the part."""
    found: dict[str, str] = {}
    for part in parts:
        if part.content_id:
            found.setdefault(part.content_id, part_path(message_id, part.part_id))
    return found


def data_urls(parts: Iterable[Part], contents: Mapping[str, bytes]) -> dict[str, str]:
    """Each image part's Content-ID mapped to a ``data:`` URL of its bytes.

    The UI's preview carries its inline images itself: a sandboxed document has an opaque
    origin, and the browser would send its requests to this server without the login the
    rest of the UI uses.
    """
    found: dict[str, str] = {}
    for part in parts:
        data = contents.get(part.part_id)
        if part.content_id and data is not None and _IMAGE_TYPE.fullmatch(part.content_type):
            encoded = base64.b64encode(data).decode("ascii")
            found.setdefault(part.content_id, f"data:{part.content_type};base64,{encoded}")
    return found


def rewrite_cids(html: str, urls: Mapping[str, str]) -> str:
    """``cid:`` references (RFC 2392) replaced by the URLs of the parts they name."""
    if not urls or "cid:" not in html.lower():
        return html
    folded = {key.lower(): url for key, url in urls.items()}

    def swap(match: re.Match[str]) -> str:
        wanted = unquote(match.group(1)).strip("<>")
        url = urls.get(wanted) or folded.get(wanted.lower())
        return url if url is not None else match.group(0)

    return _CID.sub(swap, html)


def sanitise(html: str, part_prefix: str | None = None) -> Preview:
    """The HTML with everything active removed; links open in a new tab.

    Relative URLs survive only when they start with ``part_prefix`` (the message's own parts,
    after ``cid:`` rewriting), and not at all without one: any other relative URL would
    point into this server's API.
    """
    remote = False

    def keep(tag: str, attribute: str, value: str) -> str | None:
        nonlocal remote
        if attribute not in _URL_ATTRIBUTES:
            return value
        url = value.strip()
        if (
            part_prefix
            and url.startswith(part_prefix)
            and _PART_ID.fullmatch(url[len(part_prefix) :])
        ):
            return value
        scheme = urlsplit(url).scheme.lower() if ":" in url else ""
        if tag == "a" and attribute == "href":
            return value if scheme in _LINK_SCHEMES else None
        if attribute in {"src", "background"} and scheme == "data":
            return value if url[5:].lstrip().lower().startswith("image/") else None
        if scheme in _RESOURCE_SCHEMES or url.startswith("//"):
            if attribute in {"src", "background", "href"}:
                remote = True
            return value
        return None

    cleaned = nh3.clean(
        html,
        tags=set(nh3.ALLOWED_TAGS) | _EXTRA_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes={"*": _GENERIC_ATTRIBUTES, **_TAG_ATTRIBUTES},
        # Only real stylesheets: prefetch, preload and the like would fetch behind the
        # reader's back, whatever the remote-content toggle says.
        tag_attribute_values={"link": {"rel": {"stylesheet"}}},
        set_tag_attribute_values={"a": {"target": "_blank", "rel": "noreferrer noopener"}},
        link_rel=None,
        attribute_filter=keep,
        url_schemes={"http", "https", "mailto", "tel", "data"},
        strip_comments=True,
    )
    return Preview(cleaned, remote or bool(_REMOTE_CSS.search(cleaned)))


def _source(url: str) -> str:
    # A CSP source expression ends at whitespace, ';' or ','; the Host header is the client's.
    return quote(url, safe=":/[]@%.-_~")


def preview_csp(part_source: str | None, *, remote: bool) -> str:
    """The Content-Security-Policy a preview document is served with.

    ``part_source`` is the absolute URL prefix of the message's parts: a path-scoped source,
    so that CSS in a message cannot make the browser request any other URL of this server.
    None allows nothing from this server at all (the UI's preview carries its images as
    ``data:`` URLs). ``remote`` lets images, stylesheets and fonts load from anywhere on
    the web, which is what the UI's "load remote content" asks for.
    """
    parts = f" {_source(part_source)}" if part_source else ""
    extra = " http: https:" if remote else ""
    media_none = "" if remote else " 'none'"
    return "; ".join(
        [
            # An opaque origin: no script, no forms, no navigating the page around it; new
            # tabs for links, outside the sandbox so that the linked site works normally.
            "sandbox allow-popups allow-popups-to-escape-sandbox",
            "default-src 'none'",
            f"img-src data:{parts}{extra}",
            f"style-src 'unsafe-inline'{extra}",
            f"font-src data:{parts}{extra}",
            f"media-src{parts or media_none}{extra}",
            "form-action 'none'",
            "base-uri 'none'",
            "frame-ancestors 'self'",
        ]
    )


class _BodyTag(HTMLParser):
    """Reads the attributes of a document's first ``<body>`` tag, and stops there."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attributes: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and self.attributes is None:
            self.attributes = {}
            for name, value in attrs:
                self.attributes.setdefault(name, value or "")
            raise _Found


class _Found(Exception):
    pass


def _body_attributes(html: str) -> dict[str, str]:
    # Only the tag goes to the (pure Python) parser, not a 10 MB document: it stops there.
    tag = _BODY_TAG.search(html)
    if tag is None:
        return {}
    reader = _BodyTag()
    try:
        reader.feed(html[tag.start() : tag.start() + _BODY_TAG_CHARS])
        reader.close()
    except _Found:
        pass
    return reader.attributes or {}


def wrap_body(html: str, cleaned: str) -> str:
    """``cleaned`` (``html`` sanitised) inside a ``<div class="mail-body">`` that carries the
    mail's own ``<body>`` look: its style, class, colours and direction.

    Sanitising keeps only a fragment, so a mail's ``<body style="background:#f3f4f6">`` or
    ``bgcolor`` would otherwise be lost. The wrapper's attributes are sanitised on their own,
    by the same rules as every other element's.
    """
    found = _body_attributes(html)
    styles = []
    for attribute, css in (("bgcolor", "background-color"), ("text", "color")):
        colour = found.get(attribute, "").strip()
        if _COLOUR.fullmatch(colour):
            styles.append(f"{css}:{colour}")
    if found.get("style"):
        styles.append(found["style"])
    attributes = {k: v for k, v in found.items() if k in _BODY_ATTRIBUTES - {"style", "class"}}
    attributes["class"] = " ".join(["mail-body", found.get("class", "")]).strip()
    if styles:
        attributes["style"] = ";".join(styles)
    tag = "<div" + "".join(f' {k}="{escape(v)}"' for k, v in attributes.items()) + "></div>"
    opening = sanitise(tag).html.removesuffix("</div>")
    if not opening.startswith("<div"):  # nh3 never drops a div; this keeps the markup whole
        opening = '<div class="mail-body">'
    return f"{opening}{cleaned}</div>"
