"""Write mailsink's copy of the caniemail data set from the ``caniemail`` npm package.

    npm pack caniemail && tar xzf caniemail-*.tgz
    python scripts/caniemail_data.py package/

reads ``package/data/caniemail.json`` and ``package/LICENSE`` and writes
``mailsink/parsing/caniemail.json`` (only the features the HTML check looks for, descriptions
already turned from Markdown into HTML, the platform list of the whole set) and
``mailsink/parsing/caniemail.LICENSE``.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "mailsink" / "parsing"
sys.path.insert(0, str(HERE.parent.parent))

from mailsink.parsing.htmlcheck import FEATURES  # noqa: E402

_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def markdown_inline(text: str) -> str:
    """The Markdown caniemail writes (code spans and links) as HTML; everything else escaped."""
    out = html.escape(text.strip(), quote=True)
    out = _CODE.sub(r"<code>\1</code>", out)
    return _LINK.sub(r'<a href="\2" target="_blank">\1</a>', out)


def main(package: Path) -> None:
    source = json.loads((package / "data" / "caniemail.json").read_text("utf-8"))
    family_names = source["nicenames"]["family"]
    platforms: dict[str, set[str]] = {}
    for entry in source["data"]:
        for family, by_platform in entry["stats"].items():
            for platform in by_platform:
                platforms.setdefault(platform, set()).add(family_names.get(family, ""))
    features = {}
    for entry in source["data"]:
        if entry["slug"] not in FEATURES:
            continue
        features[entry["slug"]] = {
            "title": entry["title"],
            "description": markdown_inline(entry["description"] or ""),
            "url": entry["url"],
            "category": entry["category"],
            "tags": entry["tags"] or [],
            "stats": entry["stats"],
            "notes": {n: markdown_inline(t) for n, t in (entry.get("notes_by_num") or {}).items()},
        }
    missing = sorted(set(FEATURES) - set(features) - {"html-script"})
    out = {
        "source": "caniemail npm package, data/caniemail.json",
        "api_version": source["api_version"],
        "last_update_date": source["last_update_date"],
        "families": family_names,
        "platform_names": source["nicenames"]["platform"],
        "platforms": {p: sorted(f) for p, f in platforms.items()},
        "features": features,
    }
    (HERE / "caniemail.json").write_text(
        json.dumps(out, separators=(",", ":"), sort_keys=True, ensure_ascii=False) + "\n", "utf-8"
    )
    (HERE / "caniemail.LICENSE").write_text((package / "LICENSE").read_text("utf-8"), "utf-8")
    print(f"{len(features)} features written; not in the data set: {missing}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
