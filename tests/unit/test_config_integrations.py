"""The config sections of the CRM features: [[crm]], [phone], [cache], [redis], [agi], [[webhook]]."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxlink.config import AgiConfig, ConfigError, load_config

FULL = """
[web]
public_url = "https://pbx.example.com/"
[phone]
default_region = "gb"
match_digits = 10
[cache]
ttl = 120
negative_ttl = 15
[redis]
url = "redis://:pw@127.0.0.1:6379/2"
[agi]
listen = "0.0.0.0:4573"
budget = 0.25
[[crm]]
name = "hubspot"
type = "hubspot"
token = "from-file"
portal_id = "123"
[[crm]]
name = "odoo-eu"
type = "odoo"
timeout = 2
enabled = false
url = "https://odoo.example.com"
[[webhook]]
name = "erp"
url = "https://erp.example.com/hooks/pbx"
secret = "0123456789abcdef"
events = ["ended", "answered"]
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    path = tmp_path / "pbxlink.toml"
    path.write_text(text)
    return load_config(path, environ=env or {})


def error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, text, env)
    return str(exc.value)


def test_every_section_is_read(tmp_path: Path) -> None:
    cfg = load(
        tmp_path, FULL, {"PBXLINK_CRM_HUBSPOT_TOKEN": "from-env", "PBXLINK_CRM_ODOO_EU_PASSWORD": "pw"}
    )
    assert cfg.web.public_url == "https://pbx.example.com"
    assert (cfg.phone.default_region, cfg.phone.match_digits) == ("GB", 10)
    assert (cfg.cache.ttl, cfg.cache.negative_ttl) == (120.0, 15.0)
    assert cfg.redis_url == "redis://:pw@127.0.0.1:6379/2"
    assert cfg.agi == AgiConfig(host="0.0.0.0", port=4573, budget=0.25)
    hub, odoo = cfg.crm
    assert (hub.name, hub.type, hub.timeout, hub.enabled) == ("hubspot", "hubspot", 5.0, True)
    assert hub.options == {"token": "from-env", "portal_id": "123"}  # the environment wins
    assert (odoo.timeout, odoo.enabled, odoo.options["password"]) == (2.0, False, "pw")
    (hook,) = cfg.webhooks
    assert (hook.name, hook.events) == ("erp", ("ended", "answered"))


def test_secrets_stay_out_of_reprs(tmp_path: Path) -> None:
    cfg = load(tmp_path, FULL)
    text = repr(cfg)
    for secret in ("from-file", "0123456789abcdef", ":pw@"):
        assert secret not in text


def test_defaults_without_the_sections(tmp_path: Path) -> None:
    cfg = load(tmp_path, "")
    assert (cfg.crm, cfg.webhooks, cfg.agi, cfg.redis_url) == ((), (), None, None)
    assert (cfg.phone.default_region, cfg.cache.ttl) == ("US", 300.0)
    assert load(tmp_path, "[agi]\n").agi == AgiConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[crm]]\nname = "x"\ntype = "salesforce"\n',
            '[[crm]] #1 "x" type: "salesforce" is not one of hubspot',
        ),
        ('[[crm]]\ntype = "hubspot"\n', '[[crm]] #1: missing key "name"'),
        (
            '[[crm]]\nname="a"\ntype="rest"\n[[crm]]\nname="a"\ntype="rest"\n',
            'a second [[crm]] is "a"',
        ),
        ('[[crm]]\nname="a"\ntype="rest"\nenabled="yes"\n', "enabled: expected true or false"),
        ('[phone]\ndefault_region = "XX"\n', '[phone] default_region: "XX" is not a region code'),
        ("[phone]\nmatch_digits = 3\n", "[phone] match_digits: expected a number of digits 7-15, got 3"),
        ("[cache]\nttl = -1\n", "[cache] ttl: expected a positive number of seconds, got -1"),
        ('[redis]\nurl = "http://:pw@h/0"\n', '[redis] url: "http://:***@h/0" is not redis://'),
        ("[agi]\nbudget = 30\n", "[agi] budget: expected seconds, more than 0 and at most 5"),
        ('[agi]\nlisten = "4573"\n', '[agi] listen: "4573" is not host:port'),
        (
            '[[webhook]]\nname="w"\nurl="ftp://x/y"\nsecret="0123456789abcdef"\n',
            'url: "ftp://x/y" is not an http',
        ),
        ('[[webhook]]\nname="w"\nurl="https://x/y"\nsecret="short"\n', "needs a secret of at least 16"),
        (
            '[[webhook]]\nname="w"\nurl="https://x/y"\nsecret="0123456789abcdef"\nevents=["rang"]\n',
            "events: expected a list of event kinds",
        ),
        (
            '[web]\npublic_url = "pbx.example.com"\n',
            '[web] public_url: "pbx.example.com" is not an http(s)://',
        ),
    ],
)
def test_mistakes_are_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    got = error(tmp_path, text)
    assert message in got and "\n" not in got


def test_webhook_secret_from_the_environment(tmp_path: Path) -> None:
    text = '[[webhook]]\nname="erp-1"\nurl="https://x/y"\n'
    assert "PBXLINK_WEBHOOK_ERP_1_SECRET" in error(tmp_path, text)
    cfg = load(tmp_path, text, {"PBXLINK_WEBHOOK_ERP_1_SECRET": "s" * 20})
    assert cfg.webhooks[0].secret == "s" * 20


def test_outbox_retry_schedule(tmp_path: Path) -> None:
    cfg = load(tmp_path, "[outbox]\nretry_delays = [1, 2.5]\ngive_up_after = 60\n")
    assert (cfg.outbox.retry_delays, cfg.outbox.give_up_after) == ((1.0, 2.5), 60.0)
    assert "[outbox] retry_delays: expected a list of positive seconds" in error(
        tmp_path, "[outbox]\nretry_delays = [0]\n"
    )
