"""Why an upload was refused; rendered by the web layer as ``{code:-1,msg}``."""

from __future__ import annotations

from imhub.errors import ApiError


class MediaRejected(ApiError):
    """The upload is not something we store (type, damage, dimensions): HTTP 200, code -1,
    like every business outcome of the seed's API."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg, status=200)


class MediaTooLarge(ApiError):
    def __init__(self, msg: str) -> None:
        super().__init__(msg, status=413)
