"""RFC 6455 §5.1: every client-to-server frame is masked, and a server MUST close the
connection on an unmasked one (1002). aiohttp's reader unmasks what is masked and
accepts the rest, so this wrapper around it reads just the frame headers of the byte
stream (a few byte operations per frame; payloads are skipped, not copied) and turns
the first unmasked frame into the protocol error aiohttp itself raises for malformed
frames, which closes the socket with 1002.

It hooks aiohttp internals (pinned in pyproject.toml): the response's ``_parser``
and ``_reader`` and the protocol's ``_payload_parser``/``_message_tail``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import WebSocketError, WSCloseCode, web
from aiohttp.http_websocket import WebSocketWriter
from aiohttp.web_request import BaseRequest


class MaskedFramesOnly:
    """Stands in for aiohttp's WebSocketReader as the protocol's payload parser."""

    def __init__(self, inner: Any, queue: Any) -> None:
        self._inner = inner
        self._queue = queue
        self._head = b""  # a frame header split across reads
        self._skip = 0  # payload bytes of the current frame still to come
        self._failed = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self._failed:
            return True, b""
        bad = self.scan(data)
        if bad < 0:
            result: tuple[bool, bytes] = self._inner.feed_data(data)
            return result
        self._failed = True
        if bad:
            self._inner.feed_data(data[:bad])  # the well-formed frames before it
        self._queue.set_exception(WebSocketError(WSCloseCode.PROTOCOL_ERROR, "client frames must be masked"))
        return True, b""

    def feed_eof(self) -> None:
        self._inner.feed_eof()

    def scan(self, data: bytes) -> int:
        """Where the first unmasked frame of ``data`` starts, or -1 if there is none
        (0 also when its header began in an earlier read)."""
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            had = len(self._head)
            head = self._head + data[pos : pos + 14 - had]  # a header is at most 14 bytes
            if len(head) < 2:
                self._head = head
                return -1
            if not head[1] & 0x80:
                return max(pos - had, 0)
            size7 = head[1] & 0x7F
            ext = 2 if size7 == 126 else 8 if size7 == 127 else 0
            header_len = 2 + ext + 4
            if len(head) < header_len:  # only when the whole rest of data was taken
                self._head = head
                return -1
            self._skip = int.from_bytes(head[2 : 2 + ext], "big") if ext else size7
            self._head = b""
            pos += header_len - had
        return -1


class StrictWebSocketResponse(web.WebSocketResponse):
    """A WebSocketResponse whose client frames must be masked."""

    def _post_start(self, request: BaseRequest, protocol: str | None, writer: WebSocketWriter) -> None:
        handler = request.protocol
        # Frames that arrived with the upgrade request: held back so they pass the check too.
        tail, handler._message_tail = handler._message_tail, b""
        super()._post_start(request, protocol, writer)
        guard = MaskedFramesOnly(self._parser, self._reader)
        handler._payload_parser = guard
        if tail:
            guard.feed_data(bytes(tail))
