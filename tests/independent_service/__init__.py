"""An independent implementation of SignalR Service's side of Default mode, for tests.

Written from the .NET SDK's sources (Azure/azure-signalr: ``ServiceProtocol.cs`` for the wire,
``test/Microsoft.Azure.SignalR.IntegrationTests/MockService/MockServiceSideConnection.cs`` for how a
service connects a client: OpenConnection, then the client's handshake as its first ConnectionData),
and on purpose importing nothing from ``signalr_asgi_auth``: raw ``msgpack``, its own size prefix, its
own JSON and MessagePack hub framing (``_wire.py``). A bug in the library's codec therefore shows up
as a disagreement here instead of passing through.

A WebSocket server on wsproto and anyio in the test's own event loop (asyncio and trio), on
127.0.0.1 and a free port::

    async with IndependentService.running(access_key=KEY) as service:   # or entra_jwks=..., or neither
        ...point the app's server connections at service.url...
        await service.wait_for_servers("chat", count=2)
        client = await service.connect_client("chat", protocol="json", user_id="ann")
        assert client.handshake == {}                     # the hub's answer to the client's handshake
        await client.invoke("send", "hi", invocation_id="1")
        await client.wait_for(lambda c: any(m.get("type") == 3 for m in c.received))
        await service.close_client(client)                # CloseConnection to the hub

What it does, as the service does:
- ``/server/?hub=...&cid=...``: with ``access_key``, the bearer must be an HS256/HS512 server token
  signed with the key's UTF-8 bytes and ``aud`` = ``http://{host without port}/server/?hub={hub}``;
  with ``entra_jwks``, an RS256 Entra token of ``https://signalr.azure.com``; with both, either; with
  neither, any request (tests then read ``service.attempts[i].headers``). Refusals are 401 with a
  JSON body; ``attempt.auth`` says how the bearer was checked.
- The server's HandshakeRequest gets ``[2, "", {}, nil]``; the service then pings every
  ``faults.ping_interval`` seconds; ``shutdown fin`` pings get ``finack``, ``echo`` is echoed,
  ``status`` answered.
- Clients: ``connect_client`` (round robin over the hub's connections that are up, or ``server=``;
  claims as pairs, ``asrs.s.uid`` for ``user_id``; ``then=`` puts hub messages in the same payload as
  the handshake); ``client.send(dict | list | bytes)``, ``client.invoke(...)``; ``client.received``
  holds the hub messages it got (JSON dicts, MessagePack arrays); ``client.closed`` the close error.
- It carries out what the server sends: ConnectionData to its client, MultiConnection/User/MultiUser/
  Broadcast/Group/MultiGroup data and ClientInvocations to the clients they name (payload maps
  matched case-insensitively on the client's protocol), group joins and leaves (also by user), existence checks and closes of a
  user's or a group's connections, each ``...WithAck`` answered with an Ack (1 OK, 2 NotFound).
  ``server.received`` records every message as its plain array, in order; ``server.of_type(n)``.

Fault hooks, for the pool's tests: ``service.faults`` (``refuse_status`` 401/403/429..., a
``handshake_error``, ``answer_handshake=False`` for a service that accepts and then says nothing,
``ping_interval=None`` for no pings, ``answer_acks=False``, ``ack_status``), and on a connection:
``send(*arrays, pieces=n)`` (several messages in one WebSocket message, or cut into n WebSocket
messages), ``send_bytes``, ``ping(...)``, ``close()`` (a clean close), ``drop(partial)`` and
``drop_mid_message(array)`` (the TCP connection cut, after half a message).
"""

from ._service import Attempt, Client, Faults, IndependentService, ServerConnection

__all__ = ["Attempt", "Client", "Faults", "IndependentService", "ServerConnection"]
