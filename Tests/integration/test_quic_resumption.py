"""TLS session resumption over QUIC: tickets the server issues after the handshake resume later connections,
also across config changes, since QUIC and HTTPS share the server's rotating ticket keys."""

import aioquic.asyncio

from quic_clients import configuration, echo_stream, run
from test_quic import quic  # noqa: F401  (fixture)


def connect_once(server, ticket=None) -> tuple[object, bool]:
    tickets = []

    async def session():
        config = configuration("aioquic", server.root)
        config.session_ticket = ticket
        async with aioquic.asyncio.connect(
            "127.0.0.1", server.https_port, configuration=config, session_ticket_handler=tickets.append
        ) as protocol:
            assert await echo_stream(protocol, b"resume") == b"resume"
            return protocol._quic.tls.session_resumed

    resumed = run(session())
    return (tickets[-1] if tickets else None), resumed


def test_tickets_resume_quic_connections(quic):
    ticket, resumed = connect_once(quic)
    assert ticket is not None and not resumed
    ticket, resumed = connect_once(quic, ticket)
    assert resumed
    # A new TLS context (other groups) keeps the ticket keys.
    assert quic.api("PUT", "/config/tls", {"groups": ["X25519", "P-256"]}).status_code == 200
    _, resumed = connect_once(quic, ticket)
    assert resumed
    # With tickets off, nothing resumes.
    assert quic.api("PUT", "/config/tls/session_tickets", {"enabled": False}).status_code == 200
    _, resumed = connect_once(quic, ticket)
    assert not resumed
