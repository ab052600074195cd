"""The command line: ``python -m signalr_asgi_auth <command>`` (or ``signalr-asgi-auth``).

Commands:

- ``doctor``: check the connection string, the identity, its roles and the service, with the fix
  for each failure (``signalr_asgi_auth._doctor``).
- ``emulator``: a local emulator of Azure SignalR Service and its managed identity (needs the
  ``emulator`` extra: ``pip install 'signalr-asgi-auth[emulator]'``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._doctor import add_doctor_command
from ._version import __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m signalr_asgi_auth",
        description="Azure SignalR Service with Microsoft Entra ID for Starlette and FastAPI.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subcommands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add_doctor_command(subcommands)
    try:
        from .emulator._cli import add_emulator_command
    except ImportError as error:  # uvicorn or websockets is missing
        missing = error.name or "a dependency"
        stub = subcommands.add_parser("emulator", help="(needs the emulator extra)")
        stub.add_argument("ignored", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        stub.set_defaults(missing=missing)
    else:
        add_emulator_command(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
