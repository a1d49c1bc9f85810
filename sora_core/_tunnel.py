"""The ``CONNECT`` handshake that opens a tunnel through an HTTP proxy.

RFC 9110 §9.3.6: the client asks ``CONNECT host:port``; any 2xx answer
turns the connection into a tunnel to that host, through which TLS then
runs as if the connection were direct. h11 frames the exchange (and knows
that a 2xx to CONNECT switches protocols); this module maps what goes
wrong to the project's errors.
"""

from __future__ import annotations

import h11

from ._errors import ConnectError, RemoteProtocolError
from ._proxy import Proxy
from ._request import USER_AGENT

__all__ = ["Tunnel"]


class Tunnel:
    """One CONNECT exchange with ``proxy`` for ``host:port``; no I/O."""

    def __init__(self, proxy: Proxy, host: str, port: int, max_header_size: int) -> None:
        self.proxy = proxy
        self.authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_header_size)

    def request(self) -> bytes:
        """The bytes of ``CONNECT host:port``."""
        headers = [("Host", self.authority), ("User-Agent", USER_AGENT)]
        if self.proxy.authorization:
            headers.append(("Proxy-Authorization", self.proxy.authorization))
        data = self._h11.send(h11.Request(method="CONNECT", target=self.authority, headers=headers))
        return (data or b"") + (self._h11.send(h11.EndOfMessage()) or b"")

    def receive(self, data: bytes) -> bool:
        """Bytes from the proxy (``b""`` at EOF); ``True`` once the tunnel is open.

        Raises :class:`~sora_core.ConnectError` when the proxy refuses it.
        """
        where = f"the proxy {self.proxy.display}"
        try:
            self._h11.receive_data(data)
            event = self._h11.next_event()
            while isinstance(event, h11.InformationalResponse):  # a 1xx: the answer follows
                event = self._h11.next_event()
        except h11.RemoteProtocolError as exc:
            if not data:  # EOF in the middle of the answer
                raise ConnectError(
                    f"{where} closed the connection instead of opening a tunnel"
                ) from None
            raise RemoteProtocolError(f"malformed answer from {where} to CONNECT: {exc}") from None
        if event is h11.NEED_DATA:
            if not data:
                raise ConnectError(f"{where} closed the connection instead of opening a tunnel")
            return False
        if isinstance(event, h11.Response):
            if 200 <= event.status_code < 300:
                if self._h11.trailing_data[0]:
                    raise RemoteProtocolError(
                        f"{where} sent data before the tunnel's TLS handshake"
                    )
                return True
            hint = " (proxy authentication required)" if event.status_code == 407 else ""
            raise ConnectError(
                f"{where} refused a tunnel to {self.authority}: HTTP {event.status_code}{hint}"
            )
        raise ConnectError(f"{where} closed the connection instead of opening a tunnel")
