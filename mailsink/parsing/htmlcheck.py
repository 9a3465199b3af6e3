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
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from importlib.resources import files
from typing import Any

from .parser import feed_bounded

__all__ = ["FEATURES", "check_html"]

_Attrs = dict[str, str]
_Match = Callable[[str, _Attrs], bool]


class _tags:  # a matcher, as the functions next to it
    def __init__(self, *names: str) -> None:
        self.tags = frozenset(names)

    def __call__(self, tag: str, attrs: _Attrs) -> bool:
        return tag in self.tags


def _has(name: str) -> _Match:
    return lambda tag, attrs: name in attrs


def _is(attr: str, value: str, tag: str = "") -> _Match:
    return lambda t, attrs: attrs.get(attr) == value and (not tag or t == tag)


def _any(*tests: _Match) -> _Match:
    return lambda tag, attrs: any(test(tag, attrs) for test in tests)


# Mailpit's element tests, its selectors written as matchers (``submit``, ``checkbox`` and
# ``radio`` are tag names there too).
_HTML_TESTS: dict[str, _Match] = {
    "html-object": _tags("object", "embed", "image", "pdf"),
    "html-link": _tags("link"),
    "html-hr": _tags("hr"),
    "html-dialog": _tags("dialog"),
    "html-srcset": _has("srcset"),
    "html-picture": _tags("picture"),
    "html-svg": _tags("svg"),
    "html-progress": _tags("progress"),
    "html-required": _has("required"),
    "html-meter": _tags("meter"),
    "html-audio": _tags("audio"),
    "html-form": _tags("form"),
    "html-input-submit": _tags("submit"),
    "html-button-reset": _is("type", "reset", "button"),
    "html-button-submit": _any(_tags("submit"), _is("type", "submit", "button")),
    "html-base": _tags("base"),
    "html-input-checkbox": _tags("checkbox"),
    "html-input-hidden": _is("type", "hidden"),
    "html-input-radio": _tags("radio"),
    "html-input-text": _is("type", "text", "input"),
    "html-video": _tags("video"),
    "html-semantics": _tags(
        "article",
        "aside",
        "details",
        "figcaption",
        "figure",
        "footer",
        "header",
        "main",
        "mark",
        "nav",
        "section",
        "summary",
        "time",
    ),
    "html-select": _tags("select"),
    "html-textarea": _tags("textarea"),
    "html-anchor-links": lambda tag, attrs: tag == "a" and attrs.get("href", "").startswith("#"),
    "html-style": _tags("style"),
    "html-image-maps": _any(_tags("map"), lambda tag, attrs: tag == "img" and "usemap" in attrs),
}

# The tests that look at the tag name alone, by tag, and those that look at attributes.
_TAG_TESTS: dict[str, list[str]] = {}
for _slug, _test in _HTML_TESTS.items():
    for _tag in getattr(_test, "tags", ()):
        _TAG_TESTS.setdefault(_tag, []).append(_slug)
_ATTRIBUTE_TESTS = {k: t for k, t in _HTML_TESTS.items() if not hasattr(t, "tags")}

_IMAGE_TESTS: dict[str, re.Pattern[str]] = {
    f"image-{ext}": re.compile(rf"(?i)\.{pattern}$")
    for ext, pattern in {
        "apng": "apng", "avif": "avif", "bmp": "bmp", "gif": "gif", "hdr": "hdr",
        "heif": "heif", "ico": "ico", "mp4": "mp4", "ppm": "ppm", "svg": "svg",
        "tiff": "tiff?", "webp": "webp",
    }.items()
}  # fmt: skip
_IMAGE_TESTS["image-base64"] = re.compile(r"^(?i:data:image/)")

# Presentational attributes Mailpit counts as CSS (found once however many elements have them).
_STYLE_ATTRIBUTES = {
    "css-background-color": "bgcolor",
    "css-background": "background",
    "css-border": "border",
    "css-height": "height",
    "css-padding": "padding",
    "css-width": "width",
}


def _property(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?i)(^|\s|;){name}(\s+)?:")


_PROPERTIES = [
    "accent-color",
    "align-items",
    "aspect-ratio",
    "background-blend-mode",
    "background-clip",
    "background-color",
    "background-image",
    "background-origin",
    "background-position",
    "background-repeat",
    "background-size",
    "background",
    "block-inline-size",
    "border-image",
    "border-radius",
    "border",
    "box-shadow",
    "box-sizing",
    "caption-side",
    "clip-path",
    "column-count",
    "column-layout-properties",
    "conic-gradient",
    "direction",
    "display",
    "filter",
    "flex-direction",
    "flex-wrap",
    "float",
    "font-kerning",
    "font-weight",
    "font",
    "gap",
    "grid-template",
    "height",
    "hyphens",
    "inline-size",
    "intrinsic-size",
    "justify-content",
    "letter-spacing",
    "line-height",
    "list-style-image",
    "list-style-position",
    "list-style",
    "margin-inline-block",
    "margin-inline",
    "margin",
    "max-block-size",
    "max-height",
    "max-width",
    "min-height",
    "min-inline-size",
    "min-width",
    "mix-blend-mode",
    "modern-color",
    "object-fit",
    "object-position",
    "opacity",
    "outline-offset",
    "outline",
    "overflow-wrap",
    "overflow",
    "padding-inline-block",
    "padding",
    "position",
    "radial-gradient",
    "tab-size",
    "table-layout",
    "text-align-last",
    "text-align",
    "text-decoration-color",
    "text-decoration-thickness",
    "text-decoration",
    "text-emphasis-position",
    "text-emphasis",
    "text-indent",
    "text-overflow",
    "text-shadow",
    "text-transform",
    "text-underline-offset",
    "transform",
    "variables",
    "visibility",
    "white-space",
    "width",
    "word-break",
    "writing-mode",
    "z-index",
]

# Declarations in an element's style (its own, and the <style> rules that apply to it).
_DECLARATION_TESTS: dict[str, re.Pattern[str]] = {f"css-{p}": _property(p) for p in _PROPERTIES}
_DECLARATION_TESTS.update(
    {
        "css-border-inline-block-individual": _property("border-inline"),
        "css-margin-block-start-end": _property("margin-block-(start|end)"),
        "css-margin-inline-start-end": _property("margin-inline-(start|end)"),
        "css-padding-block-start-end": _property("padding-block-(start|end)"),
        "css-padding-inline-start-end": _property("padding-inline-(start|end)"),
        "css-scroll-snap": _property("roll-snap"),
        "css-display-flex": re.compile(r"(?i)(^|\s|;)display(\s+)?:(\s+)?flex($|\s|;)"),
        "css-display-grid": re.compile(r"(?i)(^|\s|;)display:grid"),
        "css-display-none": re.compile(r"(?i)(^|\s|;)display:none"),
        "css-important": re.compile(r"(?i)!important($|\s|;)"),
        "css-rgb": re.compile(r"(?i)(\s|:)rgb\("),
        "css-rgba": re.compile(r"(?i)(\s|:)rgba\("),
        "css-unit-calc": re.compile(r"(?i)(\s|:)calc\("),
    }
)

# Units, counted each time they occur in the elements' styles.
_UNIT_TESTS: dict[str, re.Pattern[str]] = {
    "css-unit-ch": re.compile(r"\b\d+ch\b", re.ASCII),
    "css-unit-initial": re.compile(r":\s?initial\b", re.ASCII),
    "css-unit-rem": re.compile(r"\b\d+rem\b", re.ASCII),
    "css-unit-vh": re.compile(r"\b\d+vh\b", re.ASCII),
    "css-unit-vmax": re.compile(r"\b\d+vmax\b", re.ASCII),
    "css-unit-vmin": re.compile(r"\b\d+vmin\b", re.ASCII),
    "css-unit-vw": re.compile(r"\b\d+vw\b", re.ASCII),
}


# The same, found faster: the property names of a style looked up at once, the few tests on
# values run one by one, the units in one pass (tests/test_checks_html.py checks they agree).
_PROPERTY_NAME = re.compile(r"(?:^|[\s;])([A-Za-z-]+)\s*:")
_SLUG_OF_PROPERTY = {p: f"css-{p}" for p in _PROPERTIES} | {
    "border-inline": "css-border-inline-block-individual",
    "margin-block-start": "css-margin-block-start-end",
    "margin-block-end": "css-margin-block-start-end",
    "margin-inline-start": "css-margin-inline-start-end",
    "margin-inline-end": "css-margin-inline-start-end",
    "padding-block-start": "css-padding-block-start-end",
    "padding-block-end": "css-padding-block-start-end",
    "padding-inline-start": "css-padding-inline-start-end",
    "padding-inline-end": "css-padding-inline-start-end",
    "roll-snap": "css-scroll-snap",
}
_VALUE_TESTS = {
    k: _DECLARATION_TESTS[k]
    for k in (
        "css-display-flex", "css-display-grid", "css-display-none", "css-important",
        "css-rgb", "css-rgba", "css-unit-calc",
    )
}  # fmt: skip
_UNIT = re.compile(r"\b\d+(ch|rem|vh|vmax|vmin|vw)\b|:\s?initial\b", re.ASCII)


def declared_features(style: str) -> set[str]:
    """The CSS features ``_DECLARATION_TESTS`` find in a style."""
    found = {
        slug
        for match in _PROPERTY_NAME.finditer(style)
        if (slug := _SLUG_OF_PROPERTY.get(match.group(1).lower()))
    }
    found.update(k for k, test in _VALUE_TESTS.items() if test.search(style))
    return found


def unit_counts(style: str) -> Counter[str]:
    """How often each of ``_UNIT_TESTS`` matches in a style."""
    return Counter(f"css-unit-{match.group(1) or 'initial'}" for match in _UNIT.finditer(style))


def _literal(text: str) -> re.Pattern[str]:
    return re.compile(re.escape(text))


# At-rules and selectors, counted in the text of the <style> blocks.
_STYLESHEET_TESTS: dict[str, re.Pattern[str]] = {
    "css-at-font-face": re.compile(r"(?mi)@font-face\s+?\{"),
    "css-at-import": re.compile(r"(?mi)@import\s"),
    "css-at-keyframes": re.compile(r"(?mi)@keyframes\s"),
    "css-at-media": re.compile(r"(?mi)@media\s?\("),
    "css-at-supports": re.compile(r"(?mi)@supports\s?\("),
    "css-pseudo-class-lang": re.compile(r":lang\s?\("),
    **{
        f"css-pseudo-class-{name}": _literal(f":{name}")
        for name in [
            "active",
            "checked",
            "first-child",
            "first-of-type",
            "focus",
            "has",
            "hover",
            "last-child",
            "last-of-type",
            "link",
            "target",
            "visited",
        ]
    },
    **{
        f"css-pseudo-class-{name}": re.compile(rf":{name}(\s+)?\(")
        for name in [
            "not",
            "nth-child",
            "nth-last-child",
            "nth-last-of-type",
            "nth-of-type",
            "only-child",
            "only-of-type",
        ]
    },
    "css-pseudo-element-after": _literal(":after"),
    "css-pseudo-element-before": _literal(":before"),
    **{
        f"css-pseudo-element-{name}": _literal(f"::{name}")
        for name in ("first-letter", "first-line", "marker", "placeholder")
    },
}

FEATURES: frozenset[str] = frozenset(
    {"html-body", "html-script"}
    | set(_HTML_TESTS)
    | set(_IMAGE_TESTS)
    | set(_STYLE_ATTRIBUTES)
    | set(_DECLARATION_TESTS)
    | set(_UNIT_TESTS)
    | set(_STYLESHEET_TESTS)
)
# How many tests Mailpit says it ran, before the one extra it counts per element test found.
_BASE_TESTS = (
    (len(_HTML_TESTS) + 1 + len(_IMAGE_TESTS) + len(_DECLARATION_TESTS) + len(_STYLE_ATTRIBUTES))
    + len(_UNIT_TESTS)
    + len(_STYLESHEET_TESTS)
)

_BODY_END = re.compile(r"(?i)</body>")
_NOTE = re.compile(r" #(\d+)$")  # the whole number (Mailpit keeps its last digit)
_HEAD_TAGS = frozenset({"meta", "title", "link", "base", "style"})
_NO_ATTRIBUTES: _Attrs = {}  # shared by every element without attributes; never changed
_JSON_SCRIPT = frozenset({"application/ld+json", "application/json"})


@dataclass(slots=True)
class _Element:
    tag: str
    attrs: _Attrs
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
    tests = _BASE_TESTS
    if _BODY_END.search(html):
        found["html-body"] = 1
    css = _style_blocks(html)
    rules = _read_rules(css)
    attributes_seen: set[str] = set()
    for element in document.elements:
        tag, attrs = element.tag, element.attrs
        if tag == "script" and attrs.get("type") not in _JSON_SCRIPT:
            found["html-script"] += 1
        for slug in _TAG_TESTS.get(tag, ()):
            found[slug] += 1
        for slug, test in _ATTRIBUTE_TESTS.items():
            if test(tag, attrs):
                found[slug] += 1
        if tag == "img" and "src" in attrs:
            for slug, pattern in _IMAGE_TESTS.items():
                if pattern.search(attrs["src"]):
                    found[slug] += 1
        attributes_seen.update(a for a in _STYLE_ATTRIBUTES.values() if a in attrs)
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
    for slug, attribute in _STYLE_ATTRIBUTES.items():
        if attribute in attributes_seen:
            found[slug] += 1
    for slug, pattern in _STYLESHEET_TESTS.items():
        if count := sum(1 for _ in pattern.finditer(css)):
            found[slug] += count
    tests += found["html-script"] > 0
    tests += sum(1 for slug in _HTML_TESTS if found[slug])
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
