"""The CRM connectors: one module per CRM behind `pbxlink.domain.crm.Connector`.

`build_connectors` turns the `[[crm]]` tables into connectors, in the configured order
(the order lookups try them in); a wrong or missing option is a `ConfigError` naming
the CRM and the key.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from pbxlink.config import CrmConfig
from pbxlink.domain.crm import Connector

#: type -> module under pbxlink.crm; each module has `from_config(cfg: CrmConfig) -> Connector`
MODULES = {
    "hubspot": "hubspot",
    "pipedrive": "pipedrive",
    "odoo": "odoo",
    "bitrix24": "bitrix24",
    "zoho": "zoho",
    "rest": "rest",
}


def build_connector(cfg: CrmConfig) -> Connector:
    module = importlib.import_module(f"pbxlink.crm.{MODULES[cfg.type]}")
    connector: Connector = module.from_config(cfg)
    return connector


def build_connectors(crms: Sequence[CrmConfig]) -> list[Connector]:
    return [build_connector(c) for c in crms if c.enabled]
