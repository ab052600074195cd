"""The command line: ``python -m signalr_asgi_auth <command>`` (or ``signalr-asgi-auth``).

Commands:

- ``doctor``: check the connection string, the identity, its roles and the service, with the fix
  for each failure (``signalr_asgi_auth._doctor``).
- ``emulator``: a local emulator of Azure SignalR Service and its managed identity (needs the
  ``emulator`` extra: ``pip install 'signalr-asgi-auth[emulator]'``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from ._doctor import add_doctor_command
from ._version import __version__

__all__ = ["main"]


_EMULATOR_NEEDS = ("uvicorn", "websockets")
"""The top-level modules of the ``emulator`` extra's requirements."""


def _prog() -> str:
    """How the user called us: ``signalr-asgi-auth`` (the console script) or ``python -m``."""
    called = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if called in ("", "-c", "__main__.py") or called.startswith("python"):
        return "python -m signalr_asgi_auth"
    return "signalr-asgi-auth" if called.startswith("signalr-asgi-auth") else called


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Azure SignalR Service with Microsoft Entra ID for Starlette and FastAPI.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add_doctor_command(subcommands)
    try:
        from .emulator._cli import add_emulator_command
    except ImportError as error:
        missing = _missing_requirement(error)
        # The stub takes any arguments: the hint, not an argparse complaint about an option
        # the real command would have known, is what the user needs to read.
        stub = subcommands.add_parser(
            "emulator", help="(needs the emulator extra)", add_help=False, prefix_chars="\0"
        )
        stub.add_argument("ignored", nargs="*", help=argparse.SUPPRESS)
        stub.set_defaults(missing=missing)
    else:
        add_emulator_command(subcommands)
    return parser


def _missing_requirement(error: ImportError) -> str:
    """Which requirement of the extra is missing (or too old to hold the module we import);
    an ImportError from anything else is a bug of ours, raised as it is, never blamed on the
    extra."""
    name = error.name or ""
    top = name.partition(".")[0]
    if top not in _EMULATOR_NEEDS:
        raise error
    try:
        found = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):  # blocked, or a broken installation: not usable either
        found = False
    if not found:
        return top
    return f"a newer {top} (it has no {name})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser(_prog())
    args = parser.parse_args(argv)
    missing = getattr(args, "missing", None)
    if missing is not None:
        print(
            f"The emulator needs {missing}: pip install 'signalr-asgi-auth[emulator]'",
            file=sys.stderr,
        )
        return 2
    code: int = args.command(args, sys.stdout, sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
