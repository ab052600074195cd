"""``python -m examples.starlette_app``: on Azure with AZURE_SIGNALR_CONNECTION_STRING, else on
the embedded emulator."""

from .._run import run
from . import create_app

run(create_app, name="Starlette")
