"""Two small chat apps on Azure SignalR Service: ``examples.starlette_app`` and ``examples.fastapi_app``.

Both serve the same page (``examples/static``) and the same HTTP API; run one with
``python -m examples.fastapi_app`` (or ``scripts/demo``).
"""
