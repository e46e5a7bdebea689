"""Configuration: one TOML file, every secret also settable from the environment.

The dataclasses are the shared contract; `load_config` builds them and turns every
mistake into a `ConfigError` whose message is one line naming the file and the key,
because an admin reads it on a terminal or in the journal, not in a traceback.

Relative paths in the file (`data_dir`, a `sqlite:///` database) are resolved against
the folder of the config file, so the same file means the same thing whatever the
working directory of the process that reads it.

The package splits the work by job (model, value checks, one module per group of sections);
everything is imported from here, so callers need not know which module holds what.
"""

from pbxlink.config.callbacks import (
    MAX_CALLBACK_ATTEMPTS,
    MAX_CALLBACK_SECONDS,
    MAX_RATE,
    MIN_RETRY_AFTER,
)
from pbxlink.config.core import load_config
from pbxlink.config.integrations import CRM_TYPES, EVENT_KINDS, MAX_AGI_BUDGET, MAX_LINK_DAYS
from pbxlink.config.model import (
    DEFAULT_DATA_DIR,
    DEFAULT_HOURS,
    DEFAULT_PORTS,
    LOG_LEVELS,
    MIN_SECRET_KEY_LENGTH,
    MISS_REASONS,
    RETENTION_DIRECTIONS,
    TRANSCODE_FORMATS,
    WEEKDAYS,
    AgiConfig,
    CacheConfig,
    CallbackPolicyConfig,
    CallbacksConfig,
    Config,
    ConfigError,
    CrmConfig,
    DatabaseConfig,
    OutboxConfig,
    PbxConfig,
    PbxType,
    PhoneConfig,
    RecordingsConfig,
    RetentionPolicyConfig,
    WebConfig,
    WebhookConfig,
    pbx_secret_env,
    redact_url,
)
from pbxlink.config.pbx import MAX_OUTBOUND_BUDGET

__all__ = [
    "CRM_TYPES",
    "DEFAULT_DATA_DIR",
    "DEFAULT_HOURS",
    "DEFAULT_PORTS",
    "EVENT_KINDS",
    "LOG_LEVELS",
    "MAX_AGI_BUDGET",
    "MAX_CALLBACK_ATTEMPTS",
    "MAX_CALLBACK_SECONDS",
    "MAX_LINK_DAYS",
    "MAX_OUTBOUND_BUDGET",
    "MAX_RATE",
    "MIN_RETRY_AFTER",
    "MIN_SECRET_KEY_LENGTH",
    "MISS_REASONS",
    "RETENTION_DIRECTIONS",
    "TRANSCODE_FORMATS",
    "WEEKDAYS",
    "AgiConfig",
    "CacheConfig",
    "CallbackPolicyConfig",
    "CallbacksConfig",
    "Config",
    "ConfigError",
    "CrmConfig",
    "DatabaseConfig",
    "OutboxConfig",
    "PbxConfig",
    "PbxType",
    "PhoneConfig",
    "RecordingsConfig",
    "RetentionPolicyConfig",
    "WebConfig",
    "WebhookConfig",
    "load_config",
    "pbx_secret_env",
    "redact_url",
]
