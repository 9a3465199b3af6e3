"""Which email clients support the HTML and CSS a message uses: Mailpit's ``html-check``.

The message's HTML is read once by the standard library's HTMLParser (fed in bounded
slices) into a flat list of elements; every feature is then found with Mailpit's rules:
elements and attributes by name, image formats by the ``src`` of ``<img>``, CSS properties
in each element's ``style`` together with the rules of ``<style>`` blocks that apply to it,
and at-rules, pseudo-classes and pseudo-elements in the text of the ``<style>`` blocks.
Support per client comes from the caniemail data set bundled as ``caniemail.json`` (see
``scripts/caniemail_data.py``; MIT, its licence in ``caniemail.LICENSE``).

Where Mailpit inlines ``<style>`` rules with a full CSS selector engine, a rule here applies
to every element that has the rule's last id, class or tag name (``.a td`` applies to every
``td``): the cost stays linear in the size of the HTML, whatever the number of rules.
"""

from __future__ import annotations

import json
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from importlib.resources import files
from typing import Any

from .htmlfeatures import (
    ATTRIBUTE_TESTS,
    BASE_TESTS,
    FEATURES,
    HTML_TESTS,
    IMAGE_TESTS,
    STYLE_ATTRIBUTES,
    STYLESHEET_TESTS,
    TAG_TESTS,
    Attrs,
    declared_features,
    unit_counts,
)
from .parser import feed_bounded

__all__ = ["FEATURES", "check_html"]

_BODY_END = re.compile(r"(?i)</body>")
_NOTE = re.compile(r" #(\d+)$")  # the whole number (Mailpit keeps its last digit)
_HEAD_TAGS = frozenset({"meta", "title", "link", "base", "style"})
_NO_ATTRIBUTES: Attrs = {}  # shared by every element without attributes; never changed
_JSON_SCRIPT = frozenset({"application/ld+json", "application/json"})


@dataclass(slots=True)
class _Element:
    tag: str
    attrs: Attrs
    in_body: bool


@dataclass
class _Document(HTMLParser):
    """The elements of an HTML document in order, with the ``<tbody>`` an HTML5 parser adds
    to a table whose rows are not in a section."""

    elements: list[_Element] = field(default_factory=list)
    _body_started: bool = False
    _head_text: bool = False  # in a <title>, <style> or <script> before the body
    _tables: list[bool] = field(default_factory=list)  # per open table: is a section open?

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("html", "head", "body", "script") and tag not in _HEAD_TAGS:
            self._body_started = True
        if tag == "table":
            self._tables.append(False)
        elif tag in ("thead", "tbody", "tfoot") and self._tables:
            self._tables[-1] = True
        elif tag == "tr" and self._tables and not self._tables[-1]:
            self._tables[-1] = True
            self.elements.append(_Element("tbody", {}, self._body_started))
        values = {k: v or "" for k, v in reversed(attrs)} if attrs else _NO_ATTRIBUTES
        self.elements.append(_Element(tag, values, self._body_started))
        if tag == "body":
            self._body_started = True
        self._head_text = tag in ("title", "style", "script") and not self._body_started

    def handle_endtag(self, tag: str) -> None:
        self._head_text = False
        if tag == "head":
            self._body_started = True
        elif tag == "table" and self._tables:
            self._tables.pop()
        elif tag in ("thead", "tbody", "tfoot") and self._tables:
            self._tables[-1] = False

    def handle_data(self, data: str) -> None:
        if not self._head_text and data.strip():
            self._body_started = True


@dataclass
class _Rules:
    """``<style>`` rules by the part of their selector an element must have: CSS features
    of each group found once, so the cost per element does not grow with the rules."""

    by_key: dict[str, tuple[frozenset[str], Counter[str]]] = field(default_factory=dict)

    def add(self, key: str, declarations: str) -> None:
        found = declared_features(declarations)
        units = unit_counts(declarations)
        old_found, old_units = self.by_key.get(key, (frozenset(), Counter()))
        self.by_key[key] = (old_found | found, old_units + units)

    def applying_to(self, element: _Element) -> list[tuple[frozenset[str], Counter[str]]]:
        keys = ["*", element.tag]
        if "id" in element.attrs:
            keys.append("#" + element.attrs["id"])
        keys += ["." + name for name in element.attrs.get("class", "").split()]
        return [self.by_key[k] for k in keys if k in self.by_key]


_COMMENT = re.compile(r"/\*.*?(\*/|\Z)", re.DOTALL)
_LAST_COMPOUND = re.compile(r"[^\s>+~]+$")
_SIMPLE = re.compile(r"([#.]?)(-?[_a-zA-Z][\w-]*|\*)")


def _selector_key(selector: str) -> str | None:
    """The id, else the class, else the tag an element needs for ``selector`` to apply to it;
    None for a selector with a pseudo-class (those are not inlined)."""
    selector = selector.strip()
    compound = _LAST_COMPOUND.search(selector)
    if not compound or ":" in selector:
        return None
    parts: list[tuple[str, str]] = _SIMPLE.findall(compound.group())
    for prefix in ("#", "."):
        for kind, name in parts:
            if kind == prefix:
                return prefix + name
    for kind, name in parts:
        if not kind:
            return name.lower()
    return "*" if compound.group().startswith("[") else None


def _read_rules(css: str) -> _Rules:
    """The plain rules of a stylesheet (not those inside at-rules), indexed by selector key."""
    rules = _Rules()
    css = _COMMENT.sub("", css)
    depth, start, prelude = 0, 0, ""
    for match in re.finditer(r"[{};]", css):
        char = match.group()
        if char == "{":
            if depth == 0:
                prelude = css[start : match.start()].strip()
                start = match.end()
            depth += 1
        elif char == "}":
            depth = max(depth - 1, 0)
            if depth == 0:
                if prelude and not prelude.startswith("@"):
                    body = css[start : match.start()]
                    for selector in prelude.split(","):
                        key = _selector_key(selector)
                        if key is not None:
                            rules.add(key, body)
                start = match.end()
        elif depth == 0:  # the end of an @import or @charset
            start = match.end()
    return rules


def _f32(value: float) -> float | int:
    """``value`` as Go encodes a float32: its shortest decimal that reads back the same."""
    single: float = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        text = f"{single:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
            shortest = float(text)
            return int(shortest) if shortest.is_integer() else shortest
    return single


@cache
def _data() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        files(__package__).joinpath("caniemail.json").read_text("utf-8")
    )
    return loaded


def _warning(slug: str, found: int) -> dict[str, Any] | None:
    data = _data()
    feature = data["features"].get(slug)
    if feature is None:
        return None
    results = []
    support = Counter[str]()
    for family, by_platform in feature["stats"].items():
        for platform, by_version in by_platform.items():
            for version, value in by_version.items():
                kind = {"y": "yes", "n": "no"}.get(value, "partial")
                support[kind] += 1
                note = _NOTE.search(value) if kind == "partial" else None
                results.append(
                    {
                        "Name": f"{data['families'].get(family, '')} "
                        f"{data['platform_names'].get(platform, '')} ({version})",
                        "Platform": platform,
                        "Family": family,
                        "Version": version,
                        "Support": kind,
                        "NoteNumber": note.group(1) if note else "",
                    }
                )
    total = sum(support.values()) or 1
    return {
        "Slug": slug,
        "Title": feature["title"],
        "Description": feature["description"],
        "URL": feature["url"],
        "Category": feature["category"],
        "Tags": feature["tags"],
        "Keywords": "",
        "Results": results,
        "NotesByNumber": feature["notes"],
        "Score": {
            "Found": found,
            "Supported": _f32(support["yes"] / total * 100),
            "Partial": _f32(support["partial"] / total * 100),
            "Unsupported": _f32(support["no"] / total * 100),
        },
    }


def _script_warning(found: int) -> dict[str, Any]:
    return {
        "Slug": "html-script",
        "Title": "<script> element",
        "Description": "JavaScript is not supported in any email client.",
        "URL": "",
        "Category": "html",
        "Tags": [],
        "Keywords": "",
        "Results": [],
        "NotesByNumber": {},
        "Score": {"Found": found, "Supported": 0, "Partial": 0, "Unsupported": 100},
    }


def _style_blocks(html: str) -> str:
    """The text of every ``<style>`` block, however long (the element parser gives up on a
    construct longer than a few kilobytes); one pass over the HTML."""
    lower = html.lower()
    blocks = []
    at = lower.find("<style")
    while at >= 0:
        start = lower.find(">", at)
        end = lower.find("</style", start) if start >= 0 else -1
        if end < 0:
            break
        blocks.append(html[start + 1 : end])
        at = lower.find("<style", end)
    return "".join(blocks)


def _found_features(document: _Document, html: str) -> tuple[Counter[str], int]:
    """How often each feature occurs, and how many tests Mailpit would say it ran."""
    found = Counter[str]()
    tests = BASE_TESTS
    if _BODY_END.search(html):
        found["html-body"] = 1
    css = _style_blocks(html)
    rules = _read_rules(css)
    attributes_seen: set[str] = set()
    for element in document.elements:
        tag, attrs = element.tag, element.attrs
        if tag == "script" and attrs.get("type") not in _JSON_SCRIPT:
            found["html-script"] += 1
        for slug in TAG_TESTS.get(tag, ()):
            found[slug] += 1
        for slug, test in ATTRIBUTE_TESTS.items():
            if test(tag, attrs):
                found[slug] += 1
        if tag == "img" and "src" in attrs:
            for slug, pattern in IMAGE_TESTS.items():
                if pattern.search(attrs["src"]):
                    found[slug] += 1
        attributes_seen.update(a for a in STYLE_ATTRIBUTES.values() if a in attrs)
        groups = rules.applying_to(element)
        style = attrs.get("style")
        if style is None and not groups:
            continue
        declared: set[str] = set()
        if style is not None:
            declared = declared_features(style)
            found.update(unit_counts(style))
        for features, units in groups:
            declared |= features
            found.update(units)
        found.update(declared)
    for slug, attribute in STYLE_ATTRIBUTES.items():
        if attribute in attributes_seen:
            found[slug] += 1
    for slug, pattern in STYLESHEET_TESTS.items():
        if count := sum(1 for _ in pattern.finditer(css)):
            found[slug] += count
    tests += found["html-script"] > 0
    tests += sum(1 for slug in HTML_TESTS if found[slug])
    return found, tests


def check_html(html: str) -> dict[str, Any]:
    """Mailpit's ``HTMLCheckResponse`` for an HTML document."""
    document = _Document()
    feed_bounded(document, html)
    if _BODY_END.search(html):  # the DOM always has a body; html, head and meta not counted
        nodes = 1 + sum(
            1 for e in document.elements if e.tag not in ("html", "head", "body", "meta")
        )
    else:
        nodes = sum(
            1
            for e in document.elements
            if e.tag == "script" or (e.in_body and e.tag not in ("html", "head", "body"))
        )
    found, tests = _found_features(document, html)
    warnings = []
    for slug, count in found.items():
        if not count:
            continue
        warning = _script_warning(count) if slug == "html-script" else _warning(slug, count)
        if warning is not None:
            warnings.append(warning)
    per_node = 1 / nodes if nodes else 0.0
    partial = unsupported = 0.0
    for w in warnings:
        score = w["Score"]
        partial = max(partial, score["Partial"] * score["Found"] * per_node)
        unsupported = max(unsupported, score["Unsupported"] * score["Found"] * per_node)
    warnings.sort(
        key=lambda w: (w["Score"]["Unsupported"] + w["Score"]["Partial"]) * w["Score"]["Found"],
        reverse=True,
    )
    return {
        "Warnings": warnings,
        "Platforms": _data()["platforms"],
        "Total": {
            "Tests": tests,
            "Nodes": nodes,
            "Supported": _f32(100 - _f32(partial) - _f32(unsupported)),
            "Partial": _f32(partial),
            "Unsupported": _f32(unsupported),
        },
    }
