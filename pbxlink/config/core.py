"""Reading the file: `load_config` finds it, and the loader checks the top level and hands each
section to the mixin that knows it."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pbxlink.config.callbacks import CallbackSections
from pbxlink.config.integrations import IntegrationSections
from pbxlink.config.model import DEFAULT_DATA_DIR, Config, ConfigError
from pbxlink.config.pbx import PbxSections
from pbxlink.config.retention import RetentionSections


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and check the config file at `path`, else at $PBXLINK_CONFIG; the environment wins for secrets."""
    env = os.environ if environ is None else environ
    if path is None or str(path) == "":
        path = env.get("PBXLINK_CONFIG") or None
    if path is None:
        raise ConfigError("no config file: pass --config FILE or set PBXLINK_CONFIG")
    return _Loader(Path(path), env).load()


_TOP_KEYS = (
    "database",
    "web",
    "pbx",
    "log",
    "data_dir",
    "crm",
    "phone",
    "cache",
    "redis",
    "agi",
    "webhook",
    "outbox",
    "recordings",
    "callbacks",
    "callback_policy",
    "retention_policy",
)


class _Loader(PbxSections, IntegrationSections, CallbackSections, RetentionSections):
    """Every section checker in one object: `load` reads the file and builds the Config."""

    def load(self) -> Config:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise self.fail("", f"cannot read config file: {reason}") from None
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise self.fail("", f"TOML syntax error: {exc}") from None
        self.known(doc, _TOP_KEYS, "")
        base = self.path.resolve().parent
        data_dir = base / Path(self.string(doc, "data_dir", "", default=str(DEFAULT_DATA_DIR))).expanduser()
        return Config(
            path=self.path.resolve(),
            database=self.database(self.table(doc, "database"), base, data_dir),
            web=self.web(self.table(doc, "web")),
            pbx=(pbxes := self.pbxes(doc.get("pbx", []))),
            data_dir=data_dir,
            log_level=self.log_level(self.table(doc, "log")),
            crm=self.crms(doc.get("crm", [])),
            phone=self.phone(self.table(doc, "phone")),
            cache=self.cache(self.table(doc, "cache")),
            agi=self.agi(doc.get("agi")),
            webhooks=self.webhooks(doc.get("webhook", [])),
            redis_url=self.redis(self.table(doc, "redis")),
            outbox=self.outbox(self.table(doc, "outbox")),
            recordings=self.recordings(self.table(doc, "recordings"), base),
            callbacks=self.callbacks(self.table(doc, "callbacks")),
            callback_policies=self.callback_policies(doc.get("callback_policy", []), pbxes),
            retention_policies=self.retention_policies(doc.get("retention_policy", [])),
        )
