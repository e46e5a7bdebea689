"""The config loader: the issue's example works as is, and every mistake is one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbxlink.config import ConfigError, load_config, pbx_secret_env

ISSUE_EXAMPLE = """
[database]
url = "sqlite:///var/lib/pbxlink/pbxlink.db"   # or postgresql://...
[web]
listen = "127.0.0.1:8080"
[[pbx]]
name = "main"
type = "asterisk"          # "freeswitch" comes next
host = "127.0.0.1"
port = 5038
username = "pbxlink"
secret = "s3cret"
"""

MINIMAL_PBX = """
[[pbx]]
name = "main"
host = "10.0.0.5"
username = "pbxlink"
secret = "s3cret"
"""


def write(tmp_path: Path, text: str, name: str = "pbxlink.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path | None, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=env or {})
    message = str(info.value)
    assert "\n" not in message
    return message


def test_issue_example_loads_with_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ISSUE_EXAMPLE), environ={})
    assert cfg.path == tmp_path / "pbxlink.toml"
    # A relative sqlite path is taken from the config file's folder, never from the working directory.
    assert cfg.database.url == f"sqlite:///{tmp_path}/var/lib/pbxlink/pbxlink.db"
    assert (cfg.web.host, cfg.web.port, cfg.web.secret_key) == ("127.0.0.1", 8080, None)
    (pbx,) = cfg.pbx
    assert (pbx.name, pbx.type, pbx.host, pbx.port, pbx.username, pbx.secret) == (
        "main",
        "asterisk",
        "127.0.0.1",
        5038,
        "pbxlink",
        "s3cret",
    )
    assert (pbx.ping_interval, pbx.connect_timeout, pbx.reconnect_max_delay) == (10.0, 5.0, 30.0)
    assert pbx.agent_patterns is None
    assert cfg.log_level == "INFO"
    assert cfg.data_dir == Path("/var/lib/pbxlink")


def test_defaults_without_database_or_web(tmp_path: Path) -> None:
    text = 'data_dir = "state"\n' + MINIMAL_PBX + '[[pbx]]\nname = "fs"\ntype = "freeswitch"\nhost = "h"\n'
    text += 'username = "u"\nsecret = "x"\n[log]\nlevel = "debug"\n'
    cfg = load_config(write(tmp_path, text), environ={})
    assert cfg.data_dir == tmp_path / "state"
    assert cfg.database.url == f"sqlite:///{tmp_path}/state/pbxlink.db"
    assert [(p.type, p.port) for p in cfg.pbx] == [("asterisk", 5038), ("freeswitch", 8021)]
    assert (cfg.web.host, cfg.web.port) == ("127.0.0.1", 8080)
    assert cfg.log_level == "DEBUG"


def test_absolute_sqlite_path_and_ipv6_listen(tmp_path: Path) -> None:
    text = f'[database]\nurl = "sqlite:///{tmp_path}/db/x.db"\n[web]\nlisten = "[::1]:9000"\n'
    cfg = load_config(write(tmp_path, text), environ={})
    assert cfg.database.url == f"sqlite:///{tmp_path}/db/x.db"
    assert (cfg.web.host, cfg.web.port) == ("::1", 9000)


def test_environment_wins_for_every_secret(tmp_path: Path) -> None:
    text = (
        MINIMAL_PBX.replace('"main"', '"Head-Office.1"') + '[web]\nsecret_key = "from-the-file-0123456789"\n'
    )
    env = {
        "PBXLINK_PBX_HEAD_OFFICE_1_SECRET": "from-env",
        "PBXLINK_WEB_SECRET_KEY": "env-key-0123456789abcdef",
        "PBXLINK_DATABASE_URL": "postgresql://pbx:pw@db.example/pbxlink",
    }
    cfg = load_config(write(tmp_path, text), environ=env)
    assert pbx_secret_env("Head-Office.1") == "PBXLINK_PBX_HEAD_OFFICE_1_SECRET"
    assert cfg.pbx[0].secret == "from-env"
    assert cfg.web.secret_key == "env-key-0123456789abcdef"
    assert cfg.database.url == "postgresql://pbx:pw@db.example/pbxlink"


def test_secret_only_in_environment(tmp_path: Path) -> None:
    text = MINIMAL_PBX.replace('secret = "s3cret"\n', "")
    cfg = load_config(write(tmp_path, text), environ={"PBXLINK_PBX_MAIN_SECRET": "env-only"})
    assert cfg.pbx[0].secret == "env-only"


def test_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL_PBX)
    assert load_config(None, environ={"PBXLINK_CONFIG": str(path)}).pbx[0].host == "10.0.0.5"


def test_repr_never_shows_secrets(tmp_path: Path) -> None:
    text = MINIMAL_PBX + '[web]\nsecret_key = "web-key-0123456789abcdef"\n'
    env = {"PBXLINK_DATABASE_URL": "postgresql://pbx:db-password@db/pbxlink"}
    shown = repr(load_config(write(tmp_path, text), environ=env))
    for secret in ("s3cret", "web-key-0123456789abcdef", "db-password"):
        assert secret not in shown
    assert "postgresql://pbx:***@db/pbxlink" in shown


def test_agent_patterns_are_checked(tmp_path: Path) -> None:
    ok = MINIMAL_PBX + 'agent_patterns = ["^PJSIP/(?P<ext>\\\\d+)-", "^SIP/(?P<ext>[^-]+)"]\n'
    assert load_config(write(tmp_path, ok), environ={}).pbx[0].agent_patterns == (
        r"^PJSIP/(?P<ext>\d+)-",
        r"^SIP/(?P<ext>[^-]+)",
    )
    no_group = MINIMAL_PBX + 'agent_patterns = ["^PJSIP/(\\\\d+)-"]\n'
    assert error_of(write(tmp_path, no_group)) == (
        f'{tmp_path}/pbxlink.toml: [[pbx]] #1 "main" agent_patterns #1: '
        '"^PJSIP/(\\\\d+)-" has no named group (?P<ext>...)'
    )
    broken = MINIMAL_PBX + 'agent_patterns = ["^PJSIP/(?P<ext>\\\\d+"]\n'
    assert "agent_patterns #1" in error_of(write(tmp_path, broken))
    assert "is not a valid regex: missing ), unterminated subpattern" in error_of(write(tmp_path, broken))


def test_agent_devices_map_devices_to_extensions(tmp_path: Path) -> None:
    ok = MINIMAL_PBX + 'agent_devices = { "DAHDI/1" = "201", "DAHDI/2" = "202" }\n'
    assert load_config(write(tmp_path, ok), environ={}).pbx[0].agent_devices == (
        ("DAHDI/1", "201"),
        ("DAHDI/2", "202"),
    )
    bad = MINIMAL_PBX + 'agent_devices = { "DAHDI/1" = 201 }\n'
    assert error_of(write(tmp_path, bad)) == (
        f'{tmp_path}/pbxlink.toml: [[pbx]] #1 "main" agent_devices.DAHDI/1: expected an extension, got 201'
    )


FREESWITCH_PBX = MINIMAL_PBX.replace('name = "main"', 'name = "fs"\ntype = "freeswitch"')


def test_freeswitch_outbound_socket_keys(tmp_path: Path) -> None:
    (plain,) = load_config(write(tmp_path, FREESWITCH_PBX), environ={}).pbx
    assert (plain.port, plain.outbound_listen, plain.outbound_budget) == (8021, None, 1.0)
    text = FREESWITCH_PBX + 'outbound_listen = "127.0.0.1:8084"\noutbound_budget = 0.5\n'
    (pbx,) = load_config(write(tmp_path, text), environ={}).pbx
    assert (pbx.outbound_listen, pbx.outbound_budget) == (("127.0.0.1", 8084), 0.5)
    v6 = FREESWITCH_PBX + 'outbound_listen = "[::1]:8084"\noutbound_budget = 2\n'
    (pbx,) = load_config(write(tmp_path, v6), environ={}).pbx
    assert (pbx.outbound_listen, pbx.outbound_budget) == (("::1", 8084), 2.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MINIMAL_PBX + 'outbound_listen = "127.0.0.1:8084"\n',
            '[[pbx]] #1 "main" outbound_listen: only for type = "freeswitch" (the FreeSWITCH outbound '
            'socket), not "asterisk"',
        ),
        (
            MINIMAL_PBX + "outbound_budget = 1.0\n",
            '[[pbx]] #1 "main" outbound_budget: only for type = "freeswitch"',
        ),
        (
            FREESWITCH_PBX + 'outbound_listen = "8084"\n',
            '[[pbx]] #1 "fs" outbound_listen: "8084" is not host:port (e.g. "127.0.0.1:8084", as in the '
            "dialplan's socket app)",
        ),
        (FREESWITCH_PBX + "outbound_listen = 8084\n", "outbound_listen: 8084 is not host:port"),
        (FREESWITCH_PBX + 'outbound_listen = "127.0.0.1:0"\n', 'outbound_listen: "127.0.0.1:0" is not'),
        (
            FREESWITCH_PBX + "outbound_budget = 0\n",
            '[[pbx]] #1 "fs" outbound_budget: expected seconds, more than 0 and at most 10 (the call '
            "waits that long at most), got 0",
        ),
        (FREESWITCH_PBX + "outbound_budget = 500\n", "outbound_budget: expected seconds, more than 0"),
        (FREESWITCH_PBX + 'outbound_budget = "1"\n', "outbound_budget: expected seconds, more than 0"),
        (FREESWITCH_PBX + "outbound_budget = true\n", "outbound_budget: expected seconds, more than 0"),
        (
            FREESWITCH_PBX + 'outbound_lisen = "x"\n',
            'unknown key "outbound_lisen" (did you mean "outbound_listen"?)',
        ),
    ],
)
def test_outbound_socket_mistakes(tmp_path: Path, text: str, expected: str) -> None:
    message = error_of(write(tmp_path, text))
    assert message.startswith(f"{tmp_path}/pbxlink.toml: ")
    assert expected in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MINIMAL_PBX.replace('secret = "s3cret"\n', ""),
            '[[pbx]] #1 "main": missing key "secret" (or set PBXLINK_PBX_MAIN_SECRET)',
        ),
        (
            '[web]\nlisten = "127.0.0.1:80x"\n',
            '[web] listen: "127.0.0.1:80x" is not host:port (e.g. "127.0.0.1:8080")',
        ),
        ('[web]\nlisten = "127.0.0.1:70000"\n', '[web] listen: "127.0.0.1:70000" is not host:port'),
        ('[web]\nlisen = "127.0.0.1:8080"\n', '[web]: unknown key "lisen" (did you mean "listen"?)'),
        ('[web]\nsecret_key = "short"\n', "[web] secret_key: must be at least 16 characters"),
        ('colour = "x"\n', 'unknown key "colour" (known: database, web, pbx, log, data_dir, crm, phone'),
        ('[datbase]\nurl = "x"\n', 'unknown key "datbase" (did you mean "database"?)'),
        (MINIMAL_PBX + 'pasword = "x"\n', '[[pbx]] #1 "main": unknown key "pasword"'),
        (MINIMAL_PBX.replace('name = "main"\n', ""), '[[pbx]] #1: missing key "name"'),
        (MINIMAL_PBX.replace('host = "10.0.0.5"\n', ""), '[[pbx]] #1 "main": missing key "host"'),
        (MINIMAL_PBX + 'port = "5038"\n', '[[pbx]] #1 "main" port: expected a number 1-65535, got "5038"'),
        (MINIMAL_PBX + "port = true\n", '[[pbx]] #1 "main" port: expected a number 1-65535, got true'),
        (MINIMAL_PBX + "ping_interval = 0\n", "ping_interval: expected a positive number of seconds, got 0"),
        (MINIMAL_PBX + 'type = "3cx"\n', 'type: "3cx" is not one of "asterisk", "freeswitch"'),
        (MINIMAL_PBX + MINIMAL_PBX, '[[pbx]] "main" name: clashes with "main"'),
        (
            MINIMAL_PBX.replace('"main"', '"main office"'),
            '[[pbx]] #1 "main office" name: must be 1-64 letters',
        ),
        (
            '[database]\nurl = "mysql://root:hunter2@db/x"\n',
            '[database] url: "mysql://root:***@db/x" is not sqlite',
        ),
        ('[log]\nlevel = "loud"\n', '[log] level: "loud" is not one of DEBUG, INFO'),
        ('[pbx]\nname = "main"\n', "pbx: expected [[pbx]] tables, one per PBX"),
        ("web = 3\n", "[web]: expected a table, got 3"),
    ],
)
def test_mistakes_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    message = error_of(write(tmp_path, text))
    assert message.startswith(f"{tmp_path}/pbxlink.toml: ")
    assert expected in message


def test_secret_values_never_echoed(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, MINIMAL_PBX.replace('secret = "s3cret"', "secret = 123456789")))
    assert message.endswith('[[pbx]] #1 "main" secret: expected a non-empty string in quotes')
    assert "123456789" not in message


def test_toml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, '[web]\nlisten = "127.0.0.1:8080"\nsecret_key "abc"\n'))
    assert message.startswith(f"{tmp_path}/pbxlink.toml: TOML syntax error: ")
    assert "line 3" in message


def test_missing_file_and_no_file_at_all(tmp_path: Path) -> None:
    assert error_of(tmp_path / "absent.toml") == (
        f"{tmp_path}/absent.toml: cannot read config file: No such file or directory"
    )
    assert error_of(None) == "no config file: pass --config FILE or set PBXLINK_CONFIG"


def test_the_shipped_example_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "pbxlink.example.toml"
    cfg = load_config(example, environ={"PBXLINK_PBX_MAIN_SECRET": "from-env"})
    assert cfg.database.url == "sqlite:////var/lib/pbxlink/pbxlink.db"
    assert [(p.name, p.type, p.port, p.secret) for p in cfg.pbx] == [("main", "asterisk", 5038, "from-env")]
