"""What every HTML report shares: the base stylesheet, figures inlined as base64 PNG, the page frame.

Pages are self-contained (inline CSS, base64 figures, no scripts, no links out), so a CI artifact opens
anywhere; every caller escapes the text it puts in.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from html import escape

BASE_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212121;margin:0;
 background:#fafafa}
th,td{padding:3px 8px;border-bottom:1px solid #e0e0e0;text-align:left;vertical-align:top}
th{background:#eeeeee;font-weight:600}
.small{font-size:12px;color:#616161}
"""


def html_page(title: str, css: str, parts: Iterable[str]) -> str:
    """The whole page: ``title`` (escaped here), the base stylesheet plus the page's own ``css``, and
    ``parts`` (already HTML) one per line; empty parts are left out."""
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{BASE_CSS}{css}</style></head><body><main>",
    ]
    return "\n".join([*head, *(p for p in parts if p), "</main></body></html>"])


def img(png: bytes, alt: str) -> str:
    """A PNG figure inlined as a data URL."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}">'
