"""What Mailpit's ``html-check`` looks for, as its rules name them: HTML elements and
attributes, image formats, CSS properties and values in a ``style``, and what a ``<style>``
block may hold (at-rules, pseudo-classes, pseudo-elements); and how many tests it counts.

``htmlcheck`` finds these in a message and scores them against the caniemail data set.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

__all__ = [
    "ATTRIBUTE_TESTS",
    "BASE_TESTS",
    "DECLARATION_TESTS",
    "FEATURES",
    "HTML_TESTS",
    "IMAGE_TESTS",
    "STYLESHEET_TESTS",
    "STYLE_ATTRIBUTES",
    "TAG_TESTS",
    "UNIT_TESTS",
    "Attrs",
    "declared_features",
    "unit_counts",
]

Attrs = dict[str, str]
Match = Callable[[str, Attrs], bool]


class _tags:  # a matcher, as the functions next to it
    def __init__(self, *names: str) -> None:
        self.tags = frozenset(names)

    def __call__(self, tag: str, attrs: Attrs) -> bool:
        return tag in self.tags


def _has(name: str) -> Match:
    return lambda tag, attrs: name in attrs


def _is(attr: str, value: str, tag: str = "") -> Match:
    return lambda t, attrs: attrs.get(attr) == value and (not tag or t == tag)


def _any(*tests: Match) -> Match:
    return lambda tag, attrs: any(test(tag, attrs) for test in tests)


# Mailpit's element tests, its selectors written as matchers (``submit``, ``checkbox`` and
# ``radio`` are tag names there too).
HTML_TESTS: dict[str, Match] = {
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
TAG_TESTS: dict[str, list[str]] = {}
for _slug, _test in HTML_TESTS.items():
    for _tag in getattr(_test, "tags", ()):
        TAG_TESTS.setdefault(_tag, []).append(_slug)
ATTRIBUTE_TESTS = {k: t for k, t in HTML_TESTS.items() if not hasattr(t, "tags")}

IMAGE_TESTS: dict[str, re.Pattern[str]] = {
    f"image-{ext}": re.compile(rf"(?i)\.{pattern}$")
    for ext, pattern in {
        "apng": "apng", "avif": "avif", "bmp": "bmp", "gif": "gif", "hdr": "hdr",
        "heif": "heif", "ico": "ico", "mp4": "mp4", "ppm": "ppm", "svg": "svg",
        "tiff": "tiff?", "webp": "webp",
    }.items()
}  # fmt: skip
IMAGE_TESTS["image-base64"] = re.compile(r"^(?i:data:image/)")

# Presentational attributes Mailpit counts as CSS (found once however many elements have them).
STYLE_ATTRIBUTES = {
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
DECLARATION_TESTS: dict[str, re.Pattern[str]] = {f"css-{p}": _property(p) for p in _PROPERTIES}
DECLARATION_TESTS.update(
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
UNIT_TESTS: dict[str, re.Pattern[str]] = {
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
    k: DECLARATION_TESTS[k]
    for k in (
        "css-display-flex", "css-display-grid", "css-display-none", "css-important",
        "css-rgb", "css-rgba", "css-unit-calc",
    )
}  # fmt: skip
_UNIT = re.compile(r"\b\d+(ch|rem|vh|vmax|vmin|vw)\b|:\s?initial\b", re.ASCII)


def declared_features(style: str) -> set[str]:
    """The CSS features ``DECLARATION_TESTS`` find in a style."""
    found = {
        slug
        for match in _PROPERTY_NAME.finditer(style)
        if (slug := _SLUG_OF_PROPERTY.get(match.group(1).lower()))
    }
    found.update(k for k, test in _VALUE_TESTS.items() if test.search(style))
    return found


def unit_counts(style: str) -> Counter[str]:
    """How often each of ``UNIT_TESTS`` matches in a style."""
    return Counter(f"css-unit-{match.group(1) or 'initial'}" for match in _UNIT.finditer(style))


def _literal(text: str) -> re.Pattern[str]:
    return re.compile(re.escape(text))


# At-rules and selectors, counted in the text of the <style> blocks.
STYLESHEET_TESTS: dict[str, re.Pattern[str]] = {
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
    | set(HTML_TESTS)
    | set(IMAGE_TESTS)
    | set(STYLE_ATTRIBUTES)
    | set(DECLARATION_TESTS)
    | set(UNIT_TESTS)
    | set(STYLESHEET_TESTS)
)
# How many tests Mailpit says it ran, before the one extra it counts per element test found.
BASE_TESTS = (
    (len(HTML_TESTS) + 1 + len(IMAGE_TESTS) + len(DECLARATION_TESTS) + len(STYLE_ATTRIBUTES))
    + len(UNIT_TESTS)
    + len(STYLESHEET_TESTS)
)
