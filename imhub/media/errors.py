"""Why an upload was refused; rendered by the web layer as ``{code:-1,msg}`` (with
``error``/``errcode`` when the reason has its own code, docs/protocol.md)."""

from __future__ import annotations

from imhub.errors import ApiError, ErrorCode, Refused


class MediaRejected(ApiError):
    """The upload is not something we store (damage, dimensions, quota): HTTP 200, code -1,
    like every business outcome of the seed's API."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg, status=200)


class MediaUnsupported(Refused):
    """A type we do not take (unknown bytes, or a file kind not enabled): HTTP 200 as
    above, with its own code. Pickles as itself (one argument), like MediaRejected."""

    def __init__(self, msg: str) -> None:
        super().__init__(ErrorCode.UNSUPPORTED_MEDIA, msg, status=200)


class MediaTooLarge(Refused):
    def __init__(self, msg: str) -> None:
        super().__init__(ErrorCode.MEDIA_TOO_LARGE, msg, status=413)
