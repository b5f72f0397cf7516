"""JSON shapes of the seed's ``User`` and ``Community`` objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from imhub.store.social import GroupRow
from imhub.store.users import UserRow


def iso_ms(ms: int) -> str:
    """Milliseconds since the epoch as RFC 3339 (what Go's time.Time marshals to)."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def user_json(user: UserRow, *, online: bool = False, token: str = "", private: bool = False) -> dict[str, Any]:
    """``private`` adds the fields only the owner (or a friend) sees; ``token`` only
    ever goes to its owner, at login."""
    data: dict[str, Any] = {
        "id": user.id,
        "mobile": user.mobile if private else "",
        "avatar": user.avatar,
        "sex": user.sex,
        "nickname": user.nickname,
        "online": online,
        "token": token,
        "memo": user.memo,
        "createat": iso_ms(user.createat),
    }
    return data


def community_json(group: GroupRow, role: str = "") -> dict[str, Any]:
    """The seed's Community plus the consent fields (old clients ignore them);
    ``role`` is the viewer's, when known."""
    data: dict[str, Any] = {
        "id": group.id,
        "name": group.name,
        "ownerid": group.ownerid,
        "icon": group.icon,
        "cate": group.cate,
        "memo": group.memo,
        "createat": iso_ms(group.createat),
        "joinpolicy": group.join_policy,
        "visibility": group.history_visibility,
    }
    if role:
        data["role"] = role
    return data
