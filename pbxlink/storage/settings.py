"""State pbxlink keeps for itself in the `setting` table: the generated web secret key."""

from __future__ import annotations

import secrets

from pbxlink.config import Config
from pbxlink.storage.database import connection
from pbxlink.storage.models import Setting

SECRET_KEY_SETTING = "web_secret_key"


def web_secret_key(cfg: Config) -> str:
    """`[web] secret_key`, else the key generated on first run and kept in the database.

    The panel signs sessions with it and the worker signs recording links, so every process of a
    site must get the same key: insert-or-ignore then read, so concurrent first starts agree.
    """
    if cfg.web.secret_key:
        return cfg.web.secret_key
    with connection():
        Setting.insert(key=SECRET_KEY_SETTING, value=secrets.token_hex(32)).on_conflict_ignore().execute()
        return str(Setting.get_by_id(SECRET_KEY_SETTING).value)
