"""The command line as users run it (a subprocess): its name in ``--help``, the install hint when the
emulator extra is missing (simulated by blocking the import, not by uninstalling), and an
ImportError of our own never blamed on the extra."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

HINT = "pip install 'signalr-asgi-auth[emulator]'"


def run(*arguments: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m signalr_asgi_auth ARGUMENTS``, with ``prelude`` run first in the same
    interpreter (to block an import)."""
    script = (
        f"{prelude}\nimport runpy, sys\nsys.argv[0] = '__main__.py'\n"
        "runpy.run_module('signalr_asgi_auth', run_name='__main__', alter_sys=True)"
    )
    return subprocess.run(
        [sys.executable, "-c", script, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def blocking(*modules: str) -> str:
    """A prelude that makes ``import module`` fail as when it is not installed."""
    return "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in modules)


def test_the_console_script_names_itself() -> None:
    script = Path(sysconfig.get_path("scripts")) / "signalr-asgi-auth"
    if not script.exists():  # the console script sits beside the interpreter in a venv
        script = Path(sys.executable).parent / "signalr-asgi-auth"
    done = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: signalr-asgi-auth ")
    assert "__main__" not in done.stdout


def test_python_dash_m_names_itself() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "signalr_asgi_auth", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m signalr_asgi_auth ")
    assert "__main__" not in done.stdout


@pytest.mark.parametrize(
    "arguments",
    [
        (),
        ("--port", "9999"),
        ("--host", "127.0.0.1", "--port", "0", "--config", "x.json"),
        ("--help",),
        ("-h",),
    ],
)
@pytest.mark.parametrize("missing", ["uvicorn", "websockets"])
def test_without_the_extra_the_hint_comes_whatever_the_options(
    arguments: tuple[str, ...], missing: str
) -> None:
    done = run("emulator", *arguments, prelude=blocking(missing))
    assert done.returncode == 2
    assert done.stderr.strip() == f"The emulator needs {missing}: {HINT}"
    assert "unrecognized arguments" not in done.stderr
    assert done.stdout == ""


def test_without_the_extra_the_top_help_still_lists_the_command() -> None:
    done = run("--help", prelude=blocking("uvicorn"))
    assert done.returncode == 0
    assert "emulator" in done.stdout
    assert "needs the emulator extra" in done.stdout


def test_an_installed_but_too_old_requirement_is_named() -> None:
    # An old uvicorn lacks the module the emulator imports: say it is too old, not missing.
    module = "uvicorn.protocols.websockets.websockets_sansio_impl"
    done = run("emulator", "--port", "1", prelude=blocking(module))
    assert done.returncode == 2
    assert "The emulator needs a newer uvicorn" in done.stderr
    assert HINT in done.stderr


def test_an_import_error_of_our_own_is_not_blamed_on_the_extra() -> None:
    # Every requirement is installed; a module of ours fails to import (a bug): the traceback
    # shows, and nothing says to install an extra that is there.
    done = run("emulator", "--port", "1", prelude=blocking("signalr_asgi_auth.emulator._cli"))
    assert done.returncode == 1
    assert "ImportError" in done.stderr or "ModuleNotFoundError" in done.stderr
    assert "signalr_asgi_auth.emulator._cli" in done.stderr
    assert HINT not in done.stderr
    assert "needs" not in done.stderr


def test_with_the_extra_the_real_command_parses_its_options() -> None:
    done = run("emulator", "--port", "not-a-number")
    assert done.returncode == 2
    assert "invalid int value: 'not-a-number'" in done.stderr
    assert HINT not in done.stderr
