"""The HTML of the subscriber's CIBA approve/deny page, and the headers it is served with.

The page is read on a phone from a link in an SMS, so it is one small document with no
script and no outside resource: its only style is the inline ``<style>`` below, which the
Content-Security-Policy allows by its SHA-256 hash (CSP Level 3) and nothing else; a page that
loads no script cannot be made to run one. ``frame-ancestors 'none'`` and
``X-Frame-Options: DENY`` keep an organizer from framing it to steer a tap onto Approve.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from datetime import UTC

from fastapi.responses import HTMLResponse

from numident.operator.ciba import ConsentView
from numident.operator.oauth_errors import NO_STORE

# Buttons are full width and at least 48 px high (WCAG 2.5.5 asks 44) with a gap between
# them, so that a thumb does not answer by mistake; text keeps a contrast above 4.5:1 and
# the buttons' edges above 3:1 (WCAG 1.4.3, 1.4.11).
_STYLE = """
:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--muted:#57606a;--line:#d0d7de;\
--accent:#0b5cad;--on-accent:#fff}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9da7b3;\
--line:#3d444d;--accent:#4493f8;--on-accent:#0d1117}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);\
font:1.0625rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:32rem;margin:0 auto;padding:1.5rem 1.25rem}
h1{font-size:1.5rem;line-height:1.25;margin:0 0 1rem}
p{margin:0 0 1rem}
dl{margin:0 0 1.25rem;border-top:1px solid var(--line)}
dt{margin-top:.75rem;color:var(--muted);font-size:.875rem}
dd{margin:0 0 .75rem;overflow-wrap:anywhere;font-weight:600}
.code{font:700 1.375rem/1.3 ui-monospace,SFMono-Regular,Menlo,monospace;letter-spacing:.05em}
form{display:grid;gap:.75rem;margin-top:1.5rem}
button{min-height:3rem;width:100%;padding:.75rem 1rem;border-radius:.5rem;font:inherit;\
font-weight:600;cursor:pointer;border:2px solid var(--accent)}
.approve{background:var(--accent);color:var(--on-accent)}
.deny{background:transparent;color:var(--fg);border-color:var(--muted)}
button:focus-visible{outline:3px solid var(--fg);outline-offset:2px}
.note{color:var(--muted);font-size:.9375rem}
"""

_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

HEADERS = {**NO_STORE, "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
           "X-Content-Type-Options": "nosniff",
           "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"}
"""What every answer of the page carries; the URL holds a credential, hence no referrer."""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title><style>{style}</style></head>
<body><main><h1>{title}</h1>{body}</main></body></html>"""

GONE = "This request is no longer waiting for an answer."


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """``body`` (HTML, already escaped) under the heading ``title``."""
    return HTMLResponse(_PAGE.format(title=html.escape(title), style=_STYLE, body=body),
                        status_code=status, headers=HEADERS)


def message(title: str, text: str, status: int = 200) -> HTMLResponse:
    """A page that only tells something: a confirmation or why nothing can be answered."""
    return page(title, f"<p>{html.escape(text)}</p>", status)


def purpose_name(purpose: str) -> str:
    """``dpv:FraudPreventionAndDetection`` -> ``Fraud prevention and detection``."""
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", purpose.removeprefix("dpv:"))
    text = " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in words)
    return text[:1].upper() + text[1:]


def question(view: ConsentView) -> HTMLResponse:
    """The question: who asks, for which purpose and access, the code the requester shows,
    until when; then Approve and Deny, one form posting ``decision`` to the same URL."""
    client = html.escape(view.client_id)
    rows = [("Requester", client),
            ("Purpose", html.escape(f"{purpose_name(view.purpose)} ({view.purpose})")),
            ("Access asked", html.escape(view.scope))]
    if view.binding_message:
        rows.append(("Code shown by the requester",
                     f'<span class="code">{html.escape(view.binding_message)}</span>'))
    expires = view.expires_at.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC")
    rows.append(("Answer before", expires))
    details = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    check = (" and the code matches the one it shows you" if view.binding_message else "")
    body = (f"<p><strong>{client}</strong> asks to use your phone line.</p><dl>{details}</dl>"
            f'<p class="note">Approve only if you started this with {client}{check}.</p>'
            '<form method="post" aria-label="Your answer">'
            '<button type="submit" name="decision" value="approve" class="approve">'
            'Approve</button>'
            '<button type="submit" name="decision" value="deny" class="deny">Deny</button>'
            "</form>")
    return page("Approve this request?", body)
