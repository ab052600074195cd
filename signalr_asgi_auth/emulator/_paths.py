"""The path of a request as it came over the wire, percent-encoding kept."""

from urllib.parse import quote

from starlette.requests import HTTPConnection


def wire_path(connection: HTTPConnection) -> str:
    """The request's path exactly as the client encoded it.

    ``connection.url.path`` is not that: Starlette before 1.10 rebuilds the URL from the decoded
    path, so a ``%23`` or ``%3F`` sent in a segment comes back as ``#``/``?`` and cuts the path
    there. ``raw_path`` is what the server read; without it (servers need not send it) the decoded
    ``path`` is quoted again, which keeps every segment whole.
    """
    raw = connection.scope.get("raw_path")
    if raw:
        return bytes(raw).decode("latin-1").partition("?")[0]
    return quote(connection.scope["path"])
