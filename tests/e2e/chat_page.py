"""The examples' chat page (``examples/static``), driven in Chromium as a user would: fill a form
by its elements' ids, submit it, and read what the page shows."""

from __future__ import annotations

import json

from .chromium import Page

__all__ = ["log_in", "messages_on", "submit", "wait_for_kind"]


def submit(page: Page, form: str, **fields: str) -> None:
    """Fill the form's fields (by element id) and submit it, as a user would."""
    page.evaluate(
        f"""(() => {{
            for (const [id, value] of Object.entries({json.dumps(fields)})) {{
                document.getElementById(id).value = value;
            }}
            document.getElementById({json.dumps(form)}).requestSubmit();
        }})()"""
    )


def messages_on(page: Page) -> list[list[str]]:
    """The messages shown, oldest first, as [kind, text]."""
    value: list[list[str]] = page.evaluate(
        "[...document.querySelectorAll('#messages li')].map(li => [li.dataset.kind, li.textContent])"
    )
    return value


def wait_for_kind(page: Page, kind: str) -> None:
    page.wait_for(f"document.querySelector('#messages li[data-kind={kind}]') !== null")


def log_in(page: Page, user: str) -> str:
    """Wait for the page to load, then join the chat as ``user``; the status it ends with."""
    page.wait_for("document.readyState === 'complete' && typeof signalR === 'object'")
    submit(page, "login", user=user)
    page.wait_for(
        "['connected', 'failed'].includes(document.getElementById('status').dataset.state)"
    )
    status: str = page.evaluate("document.getElementById('status').textContent")
    return status
