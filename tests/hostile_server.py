"""A hostile HTTP server for the tests: raw sockets, scripted misbehaviour.

:class:`HostileServer` listens on 127.0.0.1, port 0, in a background thread
and plays one *behaviour* per connection: a function that gets a
:class:`Peer` (the accepted socket with bounded helpers) and sends whatever
bytes it likes. Everything is bounded: each server has a lifetime after
which it stops by itself, every send and wait gives up when the server
stops or the client hangs up, reads are capped in size and time, and
leaving the ``with`` block stops the server and joins its threads.

The behaviours of the hostile suite are the functions of this module
(``BEHAVIOURS`` maps their names); each one is what a broken, slow or
malicious relay can do. The module is also a script, so a child process can
be pointed at a server the parent runs (see ``tests/test_hostile.py``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import Any

__all__ = ["BEHAVIOURS", "HostileServer", "Peer", "gzip_bomb"]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

#: The text a stream sends before it misbehaves (what ``partial`` must keep).
PARTIAL = "partial before the fault"

# How long a server lives at most, and how long stopping may take.
LIFETIME = 60.0
JOIN_TIMEOUT = 5.0


class Peer:
    """One accepted connection, with bounded helpers for a behaviour."""

    def __init__(self, sock: socket.socket, server: HostileServer) -> None:
        self.sock = sock
        self.server = server
        self.request = b""
        self.gone = False  # the client hung up (reset, broken pipe)

    @property
    def stopping(self) -> bool:
        return self.server.stop_event.is_set()

    def read_request(self, timeout: float = 5.0, limit: int = 4 * MiB) -> bytes:
        """Read one request (head and Content-Length body); b"" if none came."""
        self.sock.settimeout(0.05)
        data = b""
        end = time.monotonic() + timeout
        need: int | None = None
        while time.monotonic() < end and not self.stopping and len(data) < limit:
            if need is None and b"\r\n\r\n" in data:
                head, _, _ = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                need = len(head) + 4 + length
            if need is not None and len(data) >= need:
                break
            try:
                more = self.sock.recv(64 * KiB)
            except TimeoutError:
                continue
            except OSError:
                self.gone = True
                break
            if not more:
                break
            data += more
        self.request = data
        if data:
            self.server.record(data)
        return data

    def send(self, data: bytes) -> bool:
        """Send all of ``data``; False once the client is gone or the server stops."""
        if self.gone or self.stopping:
            return False
        self.sock.settimeout(1.0)
        view = memoryview(data)
        while view:
            if self.stopping:
                return False
            try:
                sent = self.sock.send(view)
            except TimeoutError:
                continue
            except OSError:
                self.gone = True
                return False
            view = view[sent:]
        return True

    def send_all(self, pieces: Iterable[bytes], limit: int = 2 * GiB) -> int:
        """Send pieces until they run out, the client leaves or ``limit`` bytes."""
        total = 0
        for piece in pieces:
            if total >= limit or not self.send(piece):
                break
            total += len(piece)
        return total

    def wait(self, seconds: float) -> None:
        """Sleep, waking early when the server stops."""
        self.server.stop_event.wait(seconds)

    def wait_for_close(self, seconds: float) -> None:
        """Wait (bounded) until the client closes its end, reading what it sends."""
        self.sock.settimeout(0.05)
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.stopping:
            try:
                if not self.sock.recv(64 * KiB):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0)."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


Behaviour = Callable[[Peer], None]


class HostileServer:
    """``with HostileServer(behaviour) as server:`` -> ``server.base_url``.

    ``behaviour`` plays each connection (a list plays one per connection in
    turn, the last one repeated). ``connections`` counts the accepted
    connections, ``requests`` keeps the raw requests read. With ``tls`` (a
    server-side context) it speaks HTTPS, and plain HTTP on the same port;
    ``handshake_failures`` counts the clients that refused its certificate.
    """

    def __init__(
        self,
        behaviour: Behaviour | list[Behaviour],
        lifetime: float = LIFETIME,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.behaviours = behaviour if isinstance(behaviour, list) else [behaviour]
        self.tls = tls
        self.handshake_failures = 0
        self.lifetime = lifetime
        self.stop_event = threading.Event()
        self.requests: list[bytes] = []
        self.connections = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        scheme = "https" if tls is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}/v1"

    def record(self, request: bytes) -> None:
        with self._lock:
            self.requests.append(request)

    def __enter__(self) -> HostileServer:
        self._started = time.monotonic()
        thread = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in list(self._threads):
            thread.join(JOIN_TIMEOUT)
        with contextlib.suppress(OSError):
            self._sock.close()

    def _accept(self) -> None:
        end = self._started + self.lifetime
        while not self.stop_event.is_set():
            if time.monotonic() > end:
                self.stop_event.set()  # bounded: the server stops by itself
                break
            try:
                sock, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                index = self.connections
                self.connections += 1
            behaviour = self.behaviours[min(index, len(self.behaviours) - 1)]
            thread = threading.Thread(
                target=self._serve, args=(sock, behaviour), name="hostile-peer", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _serve(self, sock: socket.socket, behaviour: Behaviour) -> None:
        if self.tls is not None:
            sock.settimeout(5)
            try:
                first = sock.recv(1, socket.MSG_PEEK)
            except OSError:
                first = b""
            # TLS and plain HTTP on the same port: a TLS connection starts
            # with a handshake record (0x16), plain HTTP with a method name.
            if first == b"\x16":
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True)
                except (OSError, ssl.SSLError):
                    self.handshake_failures += 1  # the client refused the certificate
                    sock.close()
                    return
        peer = Peer(sock, self)
        try:
            behaviour(peer)
        except OSError:
            pass  # the client went away: that is the point of most cases
        except BaseException as exc:  # a bug in a behaviour: let the test see it
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                sock.close()


# -- building blocks ----------------------------------------------------------------


def chunk_json(content: str | None = None, *, finish: str | None = None, model: str = "m") -> Any:
    delta = {} if content is None else {"content": content}
    return {
        "id": "chatcmpl-hostile",
        "object": "chat.completion.chunk",
        "created": 1760000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def event(obj: Any) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    return b"data: " + data.encode("utf-8") + b"\n\n"


#: The events sent before a fault: their text is PARTIAL.
BEFORE = event(chunk_json("partial ")) + event(chunk_json("before the fault"))
COMPLETE = BEFORE + event(chunk_json(finish="stop")) + event("[DONE]")
COMPLETION = {
    "id": "chatcmpl-hostile",
    "object": "chat.completion",
    "created": 1760000000,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": PARTIAL}, "finish_reason": "stop"}
    ],
}


def head(
    status: str = "200 OK",
    ctype: str | None = "text/event-stream",
    *extra: str,
    chunked: bool = False,
    length: int | None = None,
) -> bytes:
    lines = [f"HTTP/1.1 {status}"]
    if ctype:
        lines.append(f"Content-Type: {ctype}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def peak_rss_kib() -> int:
    """This process's own peak RSS in KiB.

    VmHWM is the high-water mark of this process's address space, which exec
    starts anew. ru_maxrss is not enough: Linux carries the parent's RSS at
    fork time into the child's ru_maxrss across exec, so every child of a
    large test runner would look as large as the runner.
    """
    import resource

    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b"0\r\n\r\n"


def repeat(block: bytes, total: int) -> Iterator[bytes]:
    """``block`` again and again, ``total`` bytes in all."""
    sent = 0
    while sent < total:
        piece = block[: total - sent]
        sent += len(piece)
        yield piece


@cache
def gzip_bomb(size: int = GiB) -> bytes:
    """A valid one-member gzip file of ``size`` zero bytes, about size/1000 long.

    Built in a fraction of a second: each MiB of zeros, compressed after a full
    flush, is the same byte-aligned block, so one block is repeated.
    """
    block = bytes(MiB)
    assert size % MiB == 0
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush()
    crc = 0
    for _ in range(size // MiB):
        crc = zlib.crc32(block, crc)
    gz_head = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    body = first + again * (size // MiB - 1) + tail
    return gz_head + body + struct.pack("<II", crc, size & 0xFFFFFFFF)


# -- the behaviours --------------------------------------------------------------------


def endless_status_line(peer: Peer) -> None:
    """A status line that never ends (1 GiB of reason phrase)."""
    peer.read_request()
    peer.send(b"HTTP/1.1 200 ")
    peer.send_all(repeat(b"A" * (64 * KiB), GiB))


def endless_header_line(peer: Peer) -> None:
    """One header line that never ends (1 GiB)."""
    peer.read_request()
    peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Endless: ")
    peer.send_all(repeat(b"B" * (64 * KiB), GiB))


def huge_header(peer: Peer) -> None:
    """A complete response whose one header is 1 MiB long."""
    peer.read_request()
    peer.send(head("200 OK", "text/event-stream", "X-Huge: " + "h" * MiB, length=len(COMPLETE)))
    peer.send(COMPLETE)


def endless_header_block(peer: Peer) -> None:
    """Short header lines that never stop coming (no blank line, ever)."""
    peer.read_request()
    peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
    line = b"X-More: yes\r\n"
    peer.send_all(repeat(line * 4096, GiB))


def invalid_chunk_size(peer: Peer) -> None:
    """Two good chunks, then a chunk size that is not hex."""
    peer.read_request()
    peer.send(head(chunked=True) + chunked(BEFORE) + b"zz\r\nnonsense\r\n")
    peer.wait_for_close(5)


def chunk_without_crlf(peer: Peer) -> None:
    """Chunk data longer than its size says: no CRLF where it must be."""
    peer.read_request()
    data = event(chunk_json(" and more"))
    peer.send(head(chunked=True) + chunked(BEFORE) + b"%x\r\n" % 8 + data + b"\r\n0\r\n\r\n")
    peer.wait_for_close(5)


SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def body_longer_than_length(peer: Peer) -> None:
    """Content-Length covers the first events (or a whole JSON answer); a
    second, smuggled response follows at once in the same write. Later
    requests on the connection get honest answers: a client that took the
    smuggled bytes for the next answer would show it."""
    request = peer.read_request()
    if b'"stream":true' in request:
        body = BEFORE
        peer.send(head(length=len(body)) + body + SMUGGLED)
    else:
        body = json.dumps(COMPLETION).encode()
        peer.send(head("200 OK", "application/json", length=len(body)) + body + SMUGGLED)
    good_stream(peer)


def reset_mid_chunk(peer: Peer) -> None:
    """Half of a chunk, then a TCP reset."""
    peer.read_request()
    rest = event(chunk_json(" never seen"))
    peer.send(head(chunked=True) + chunked(BEFORE) + b"%x\r\n" % len(rest) + rest[:10])
    peer.wait(0.3)  # let the client read the first part
    peer.reset()


def endless_sse_line(peer: Peer) -> None:
    """Two events, then a data: line that never ends (1 GiB)."""
    peer.read_request()
    peer.send(head() + BEFORE + b"data: ")
    peer.send_all(repeat(b"a" * (64 * KiB), GiB))


def _bomb(peer: Peer, status: str, ctype: str) -> None:
    peer.read_request()
    bomb = gzip_bomb()
    peer.send(head(status, ctype, "Content-Encoding: gzip", length=len(bomb)))
    peer.send_all(repeat(bomb, len(bomb)))


def gzip_bomb_json(peer: Peer) -> None:
    """A 200 JSON answer: 1 MiB of gzip that inflates to 1 GiB of zeros."""
    _bomb(peer, "200 OK", "application/json")


def gzip_bomb_stream(peer: Peer) -> None:
    """An event stream sent gzipped (unasked) that inflates to 1 GiB."""
    _bomb(peer, "200 OK", "text/event-stream")


def gzip_bomb_error(peer: Peer) -> None:
    """A 500 error page: 1 MiB of gzip that inflates to 1 GiB."""
    _bomb(peer, "500 Internal Server Error", "text/html")


def redirect_bomb(peer: Peer) -> None:
    """A 302 whose body is 1 MiB of gzip that inflates to 1 GiB."""
    peer.read_request()
    bomb = gzip_bomb()
    peer.send(
        head(
            "302 Found",
            "text/html",
            "Location: /v1/elsewhere/chat/completions",
            "Content-Encoding: gzip",
            length=len(bomb),
        )
    )
    peer.send_all(repeat(bomb, len(bomb)))


def endless_error_page(peer: Peer) -> None:
    """A 502 page that never ends (1 GiB, uncompressed, chunked)."""
    peer.read_request()
    peer.send(head("502 Bad Gateway", "text/html", chunked=True))
    block = chunked(b"<p>bad gateway</p>" * 3000)
    peer.send_all(repeat(block, GiB))


def drip(peer: Peer) -> None:
    """Two events, then the rest of a valid stream one byte every 20 ms
    (bounded by the server's lifetime)."""
    peer.read_request()
    peer.send(head(chunked=True) + chunked(BEFORE))
    body = event(chunk_json(" dripping")) * 50 + event("[DONE]")
    for i in range(len(body)):
        if not peer.send(chunked(body[i : i + 1])):
            return
        peer.wait(0.02)


def stall_after_headers(peer: Peer) -> None:
    """The head and two events, then silence until the client gives up."""
    peer.read_request()
    peer.send(head(chunked=True) + chunked(BEFORE))
    peer.wait_for_close(30)


def stall_before_headers(peer: Peer) -> None:
    """Reads the request, then never answers."""
    peer.read_request()
    peer.wait_for_close(30)


_HTML = (
    b"<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head>"
    b"<body><h1>Welcome</h1>" + b"<p>filler</p>" * 200 + b"</body></html>"
)


def html_200(peer: Peer) -> None:
    """A 200 with an HTML page instead of an event stream (or JSON)."""
    peer.read_request()
    peer.send(head("200 OK", "text/html; charset=utf-8", length=len(_HTML)) + _HTML)


_GATEWAY = (
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    b"<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def gateway_504(peer: Peer) -> None:
    """A gateway's 504 HTML page; the gateway closes the connection after it
    (and says so: without the header, a client may reuse the connection in
    the moment before the close arrives)."""
    peer.read_request()
    status = "504 Gateway Time-out"
    peer.send(head(status, "text/html", "Connection: close", length=len(_GATEWAY)) + _GATEWAY)


def wrong_types(peer: Peer) -> None:
    """Valid JSON of the wrong shape: ``"choices": "x"`` (after good events)."""
    request = peer.read_request()
    bad = {"id": "c", "object": "chat.completion", "choices": "x"}
    if b'"stream":true' in request:
        peer.send(head(chunked=True) + chunked(BEFORE + event(bad)) + chunked(b""))
    else:
        body = json.dumps(bad).encode()
        peer.send(head("200 OK", "application/json", length=len(body)) + body)


def not_json(peer: Peer) -> None:
    """A data: line that is not JSON, after good events (or a body that is not)."""
    request = peer.read_request()
    if b'"stream":true' in request:
        peer.send(head(chunked=True) + chunked(BEFORE + b"data: {this is not json\n\n"))
        peer.wait_for_close(5)
    else:
        body = b"{this is not json"
        peer.send(head("200 OK", "application/json", length=len(body)) + body)


def unauthorized(peer: Peer) -> None:
    """401 with the usual JSON error body."""
    peer.read_request()
    body = json.dumps(
        {"error": {"message": "Invalid API key", "type": "invalid_request_error", "code": 401}}
    ).encode()
    peer.send(head("401 Unauthorized", "application/json", length=len(body)) + body)


def answers_before_request(peer: Peer) -> None:
    """Sends a whole 401 the moment the client connects, then reads the request."""
    body = b'{"error": {"message": "go away", "type": "early"}}'
    peer.send(head("401 Unauthorized", "application/json", "Connection: close", length=len(body)))
    peer.send(body)
    peer.read_request(timeout=2)
    with contextlib.suppress(OSError):
        peer.sock.shutdown(socket.SHUT_WR)
    peer.wait_for_close(5)


def close_without_response(peer: Peer) -> None:
    """Reads the request and closes: not one byte of answer."""
    peer.read_request()


def close_delimited_stream(peer: Peer) -> None:
    """A whole stream with neither Content-Length nor chunks: it ends when the
    server closes the connection (legal, and common behind old proxies)."""
    peer.read_request()
    peer.send(head() + COMPLETE)


def good_stream(peer: Peer) -> None:
    """A well-behaved answer, kept alive for more requests (bounded)."""
    for _ in range(20):
        request = peer.read_request()
        if not request:
            return
        if b'"stream":true' in request:
            peer.send(head(length=len(COMPLETE)) + COMPLETE)
        else:
            body = json.dumps(COMPLETION).encode()
            peer.send(head("200 OK", "application/json", length=len(body)) + body)


BEHAVIOURS: dict[str, Behaviour] = {
    fn.__name__: fn
    for fn in (
        endless_status_line,
        endless_header_line,
        huge_header,
        endless_header_block,
        invalid_chunk_size,
        chunk_without_crlf,
        body_longer_than_length,
        reset_mid_chunk,
        endless_sse_line,
        gzip_bomb_json,
        gzip_bomb_stream,
        gzip_bomb_error,
        redirect_bomb,
        endless_error_page,
        drip,
        stall_after_headers,
        stall_before_headers,
        html_200,
        gateway_504,
        wrong_types,
        not_json,
        unauthorized,
        answers_before_request,
        close_without_response,
        close_delimited_stream,
        good_stream,
    )
}


# -- the child-process driver ------------------------------------------------------------


def drive(transport: str, base_url: str, stream: bool, **client_kw: Any) -> dict[str, Any]:
    """One ``chat`` call on ``transport`` against ``base_url``: its outcome as JSON.

    Used in a child process, so that the peak memory of the call can be
    measured on its own. Never raises: any exception is part of the result.
    """
    from sora_core import ChatRequest, SoraError

    request = ChatRequest(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=stream
    )
    client_kw.setdefault("max_retries", 0)
    started = time.monotonic()
    out: dict[str, Any] = {"error": None, "message": None, "partial": None, "text": None}
    try:
        if transport in ("requests", "httpx"):
            import importlib

            Client = importlib.import_module(f"sora_transports.{transport}").Client

            with Client(base_url, "sk-hostile-test", **client_kw) as client:
                out["text"] = client.chat(request).text
        else:
            import asyncio

            import trio

            from sora_transports import asyncio as asyncio_transport
            from sora_transports import trio as trio_transport

            module = trio_transport if transport == "trio" else asyncio_transport

            async def go() -> str:
                async with module.Client(base_url, "sk-hostile-test", **client_kw) as client:
                    return (await client.chat(request)).text

            out["text"] = trio.run(go) if transport == "trio" else asyncio.run(go())
    except SoraError as exc:
        out["error"] = type(exc).__name__
        out["message"] = str(exc)
        out["partial"] = exc.partial.text if exc.partial is not None else None
    except BaseException as exc:  # reported, so the test can say what escaped
        out["error"] = f"RAW {type(exc).__module__}.{type(exc).__name__}"
        out["message"] = str(exc)[:500]
    out["seconds"] = time.monotonic() - started
    return out


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("transport")
    parser.add_argument("base_url")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--client", default="{}", help="client keyword arguments as JSON")
    args = parser.parse_args()
    kw = json.loads(args.client)
    out = drive(args.transport, args.base_url, args.stream, **kw)
    out["maxrss_kib"] = peak_rss_kib()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    _main()
