"""Social graph rules: friends and groups."""

from __future__ import annotations

from imhub.config import Settings
from imhub.store.social import SocialStore
from imhub.store.users import UserStore


class SocialService:
    def __init__(self, settings: Settings, users: UserStore, store: SocialStore) -> None:
        self._settings = settings
        self._users = users
        self._store = store
