"""What pbxlink writes on the FastAGI wire, read back the way Asterisk reads it.

`asterisk_args` is parse_args() of Asterisk's res_agi.c, ported line for line: a command line
is right only if Asterisk splits it into exactly the arguments meant.
"""

from __future__ import annotations

import pytest

from pbxlink.ami.agi_session import commands, quote, request, set_variable
from pbxlink.domain.ports import CallerInfo
from pbxlink.lookup_server import Found, clean_text, found


def asterisk_args(line: str) -> list[str]:
    """How Asterisk splits an AGI command line: `"` toggles quoting, `\\` takes the next character as is."""
    args: list[list[str]] = []
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:  # an opening quote after whitespace starts an argument
                args.append([])
                whitespace = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            args.append([])
            whitespace = False
        args[-1].append(ch)
        escaped = False
    return ["".join(a) for a in args]


def test_the_port_reads_the_captured_command() -> None:
    assert asterisk_args('SET VARIABLE CALLERID(name) "ACME Corp"') == [
        "SET",
        "VARIABLE",
        "CALLERID(name)",
        "ACME Corp",
    ]


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("ACME Corp", '"ACME Corp"'),
        ('Say "hi"', '"Say \\"hi\\""'),
        ("C:\\temp\\", '"C:\\\\temp\\\\"'),
        ("a\r\nb\nc\rd\x00e", '"a b c d e"'),  # each control character a space, runs as one
        ("a\tb\x07c\x1bd\x7fe\x85f", '"a b c d e f"'),
        ("right\u202eto\u2066left\ufeff", '"right to left"'),  # bidi overrides, BOM
        ("line\u2028sep", '"line sep"'),
        ("  padded  ", '"padded"'),
        ("${SHELL(id)} $[1+1]", '"${SHELL(id)} $[1+1]"'),  # SET VARIABLE expands nothing
        ("Zoë 日本 ☎ 🙂", '"Zoë 日本 ☎ 🙂"'),
        ("", '""'),
        ("\r\n", '""'),
    ],
)
def test_quote(value: str, quoted: str) -> None:
    assert quote(value) == quoted


def test_quote_caps_before_escaping() -> None:
    assert quote("A" * 100) == '"' + "A" * 64 + '"'
    assert quote('"' * 100) == '"' + '\\"' * 64 + '"'  # 64 characters, each escaped
    assert quote("abc", cap=2) == '"ab"'


@pytest.mark.parametrize(
    "value",
    [
        'Evil "Corp" \\ x\r\nSET VARIABLE X 1\x00 ${SHELL(id)} Zoë',
        "ends with a backslash \\",
        'ends with a quote "',
        '\\"',
        '" HANGUP "',
        "tab\there  and  spaces",
        "\\\\\\",
    ],
)
def test_asterisk_reads_back_exactly_the_cleaned_value(value: str) -> None:
    line = set_variable("CALLERID(name)", value)
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and b"\r" not in line and b"\0" not in line
    assert asterisk_args(line.decode().removesuffix("\n")) == [
        "SET",
        "VARIABLE",
        "CALLERID(name)",
        clean_text(value) or "",
    ]


def test_captured_bytes() -> None:
    assert set_variable("CALLERID(name)", "ACME Corp") == b'SET VARIABLE CALLERID(name) "ACME Corp"\n'


@pytest.mark.parametrize("name", ["X Y", "A\nB", "CALLERID(name) X", "9LIVES", ""])
def test_set_variable_refuses_names_that_are_not_ours(name: str) -> None:
    with pytest.raises(ValueError, match="not an Asterisk variable name"):
        set_variable(name, "x")


def test_commands_name_first_status_last() -> None:
    assert commands(Found("hit", name="Jane", contact_id="42", owner="201")) == [
        b'SET VARIABLE CALLERID(name) "Jane"\n',
        b'SET VARIABLE PBXLINK_CONTACT_ID "42"\n',
        b'SET VARIABLE PBXLINK_OWNER "201"\n',
        b'SET VARIABLE PBXLINK_LOOKUP "hit"\n',
    ]
    assert commands(Found("timeout")) == [b'SET VARIABLE PBXLINK_LOOKUP "timeout"\n']


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (CallerInfo(name="Jane", hint="201", owner="ann"), Found("hit", "Jane", None, "201", "201")),
        (
            CallerInfo(name="Jane", owner="ann.lee@acme.example"),
            Found("hit", "Jane", None, "ann.lee@acme.example"),
        ),
        (CallerInfo(name="Jane", owner="Ann Lee"), Found("hit", "Jane")),  # a name with a space: no route
        (CallerInfo(hint="201|PJSIP/900", owner="ann"), Found("hit", owner="ann")),
        (CallerInfo(contact_id="42"), Found("hit", contact_id="42")),
        (CallerInfo(contact_id="4,2", owner="a&b"), Found("miss")),  # nothing usable left
        (CallerInfo(name=" \r\n "), Found("miss")),
        (None, Found("miss")),
    ],
)
def test_found_keeps_only_what_is_safe(info: CallerInfo | None, expected: Found) -> None:
    assert found("miss" if info is None else "hit", info, "call 1", clean_text) == expected


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("lookup?num=+15557770105", ("lookup", {"num": "+15557770105"})),
        ("lookup?num=%2B1555%20777", ("lookup", {"num": "+1555 777"})),
        ("/lookup/", ("lookup", {})),
        ("lookup?num=1&num=2&&x", ("lookup", {"num": "1", "x": ""})),
        ("", ("", {})),
    ],
)
def test_request(script: str, expected: tuple[str, dict[str, str]]) -> None:
    assert request(script) == expected
