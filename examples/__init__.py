"""Two small chat apps on Azure SignalR Service: ``examples.starlette_app`` and ``examples.fastapi_app``.

Both serve the same page (``examples/static``) and the same hub (``examples/_chat_hub.py``), in
Default mode or, with ``SIGNALR_SERVICE_MODE=serverless``, in Serverless mode; run one with
``python -m examples.fastapi_app`` (or ``scripts/demo``).
"""
