"""Configuration: one TOML file, every secret also settable from the environment.

(Dataclasses below are the shared contract; the loader is added beneath them.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

PbxType = Literal["asterisk", "freeswitch"]


@dataclass(frozen=True)
class DatabaseConfig:
    url: str


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PbxConfig:
    name: str
    type: PbxType
    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    ping_interval: float = 10.0
    connect_timeout: float = 5.0
    reconnect_max_delay: float = 30.0
    #: regexes with a named group `ext` that map a channel name to an agent extension; None = defaults
    agent_patterns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Config:
    path: Path | None
    database: DatabaseConfig
    web: WebConfig
    pbx: tuple[PbxConfig, ...]
    data_dir: Path
    log_level: str = "INFO"
