"""Social graph rules: friends and groups."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from imhub.config import Settings
from imhub.store.social import SocialStore
from imhub.store.users import UserStore

# Called after a membership change commits: (group_id, user_id, joined). The messaging
# layer registers one so a live connection starts (or stops) receiving the group at once.
MembershipListener = Callable[[int, int, bool], Awaitable[None]]


class SocialService:
    def __init__(self, settings: Settings, users: UserStore, store: SocialStore) -> None:
        self._settings = settings
        self._users = users
        self._store = store
        self.membership_listeners: list[MembershipListener] = []
