"""Loopback fakes for faults that real servers give only rarely: a RESP server that answers every
command with one error reply (``-LOADING ...``, ``-TRYAGAIN ...``), and a TCP proxy in front of a real
server that forwards a command and then cuts the connection before the reply (closed mid-reply / reset).

Both run in a daemon thread on a free loopback port and stop with ``close()``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import BinaryIO

#: Commands redis-py sends while connecting (answered normally, so the fault hits the command itself).
HANDSHAKE = {b"CLIENT", b"SELECT", b"AUTH", b"HELLO", b"READONLY"}


def _bulk(value: bytes | int) -> bytes:
    if isinstance(value, int):
        return b":%d\r\n" % value
    return b"$%d\r\n%s\r\n" % (len(value), value)


def hello_reply(proto: int) -> bytes:
    """HELLO's answer as Redis 7 gives it (a RESP3 map for ``HELLO 3``, else a flat array)."""
    pairs = [b"server", b"redis", b"version", b"7.0.15", b"proto", proto, b"id", 1, b"mode", b"standalone"]
    pairs += [b"role", b"master"]
    body = b"".join(_bulk(v) for v in pairs) + _bulk(b"modules") + b"*0\r\n"
    n = len(pairs) + 2
    return (b"%%%d\r\n" % (n // 2) if proto == 3 else b"*%d\r\n" % n) + body


def read_command(stream: BinaryIO) -> list[bytes] | None:
    """One RESP request (an array of bulk strings) from ``stream``; None at end of stream."""
    head = stream.readline()
    if not head:
        return None
    if not head.startswith(b"*"):  # inline command
        return head.split()
    args = []
    for _ in range(int(head[1:])):
        size = int(stream.readline()[1:])
        args.append(stream.read(size + 2)[:-2])
    return args


class _Listener:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._open: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.close()
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.close()


class ErrorServer(_Listener):
    """Answers every command but the connection handshake with ``-<reply>`` (e.g. ``LOADING ...``)."""

    def __init__(self, reply: str) -> None:
        self.reply = b"-" + reply.encode() + b"\r\n"
        self.commands: list[bytes] = []
        super().__init__()

    def _serve(self, conn: socket.socket) -> None:
        stream = conn.makefile("rb")
        try:
            while (args := read_command(stream)) is not None:
                name = args[0].upper() if args else b""
                self.commands.append(name)
                if name == b"HELLO":  # as Redis 7 answers HELLO 2 (allowed while loading)
                    conn.sendall(hello_reply(int(args[1]) if len(args) > 1 else 2))
                else:
                    conn.sendall(b"+OK\r\n" if name in HANDSHAKE else self.reply)
        except (OSError, ValueError):
            pass
        finally:
            for s in (stream, conn):
                with contextlib.suppress(OSError):
                    s.close()


class CuttingProxy(_Listener):
    """Forwards to ``upstream_port``; a command other than the handshake (and PING) is forwarded, then the
    client connection is closed before the reply reaches it: FIN (``reset=False``) or RST (``reset=True``).

    The server executes the command: a write cut this way may have landed.
    """

    def __init__(self, upstream_port: int, *, reset: bool = False) -> None:
        self.upstream_port = upstream_port
        self.reset = reset
        self.cuts = 0
        super().__init__()

    def _serve(self, conn: socket.socket) -> None:
        up = socket.create_connection(("127.0.0.1", self.upstream_port))
        stream = conn.makefile("rb")
        cut = threading.Event()

        def pump_back() -> None:
            try:
                while data := up.recv(65536):
                    if cut.is_set():
                        return
                    conn.sendall(data)
            except OSError:
                return

        threading.Thread(target=pump_back, daemon=True).start()
        try:
            while (args := read_command(stream)) is not None:
                name = args[0].upper() if args else b""
                packed = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
                if name in HANDSHAKE or name == b"PING":
                    up.sendall(packed)
                    continue
                cut.set()
                up.sendall(packed)  # the server runs it (pipelined followers are lost with the cut)
                self.cuts += 1
                break
        except (OSError, ValueError):
            pass
        finally:
            if cut.is_set():
                threading.Event().wait(0.05)  # let the server run the command
            if self.reset:
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            for s in (stream, conn, up):
                with contextlib.suppress(OSError):
                    s.close()
