"""AmiControl: nothing unsafe reaches the wire; good requests go out as Asterisk expects them."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from pbxlink.ami.control import TAG_VARIABLE, AmiControl
from pbxlink.domain.ports import OriginateRequest


class FakeSend:
    """Records the actions it was asked to send and answers like Asterisk."""

    def __init__(self, response: str = "Success") -> None:
        self.sent: list[dict[str, str | list[str]]] = []
        self.response = response

    def __call__(self, action: dict[str, str | list[str]]) -> Mapping[str, object]:
        self.sent.append(action)
        return {"Response": self.response, "Message": "Permission denied"}


def good(**overrides: object) -> OriginateRequest:
    fields: dict[str, object] = {
        "endpoint": "204",
        "exten": "15559876543",
        "context": "outbound",
        "caller_id": '"Agent 204" <204>',
        "variables": {"CAMPAIGN": "spring-2026"},
    }
    fields.update(overrides)
    return OriginateRequest(**fields)  # type: ignore[arg-type]


def test_good_originate_goes_out_with_tag_and_idempotent_action_id() -> None:
    send = FakeSend()
    handle = AmiControl("main", send, dial_context="agents").originate(good())
    (action,) = send.sent
    assert action["Action"] == "Originate"
    assert action["Channel"] == "Local/204@agents"
    assert (action["Context"], action["Exten"], action["Priority"]) == ("outbound", "15559876543", "1")
    assert action["Timeout"] == "30000" and action["Async"] == "true"
    assert action["CallerID"] == '"Agent 204" <204>'
    assert action["Variable"] == ["CAMPAIGN=spring-2026", f"{TAG_VARIABLE}={handle.tag}"]
    assert action["ActionID"] == f"pbxlink-originate-{handle.tag}"
    assert handle.pbx == "main"


@pytest.mark.parametrize("endpoint", ["+15551234567", "201", "*97", "#1"])
def test_dial_strings_accepted(endpoint: str) -> None:
    send = FakeSend()
    AmiControl("main", send).originate(good(endpoint=endpoint))
    assert send.sent[0]["Channel"] == f"Local/{endpoint}@from-internal"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"endpoint": "201\r\nAction: Command\r\nCommand: core stop now"}, "endpoint"),
        ({"endpoint": "PJSIP/201"}, "endpoint"),
        ({"endpoint": "201&PJSIP/666"}, "endpoint"),
        ({"endpoint": ""}, "endpoint"),
        ({"endpoint": "1" * 33}, "endpoint"),
        ({"exten": "100\nAction: Hangup"}, "exten"),
        ({"exten": "1 00"}, "exten"),
        ({"context": "outbound,1"}, "context"),
        ({"context": "out\x00bound"}, "context"),
        ({"caller_id": "Bob\r\nVariable: X=1"}, "caller_id"),
        ({"caller_id": "Bob\x00"}, "caller_id"),
        ({"variables": {"BAD NAME": "x"}}, "variables"),
        ({"variables": {"1ABC": "x"}}, "variables"),
        ({"variables": {"A": "x,B=2"}}, "variables[A]"),
        ({"variables": {"A": "x|B=2"}}, "variables[A]"),
        ({"variables": {"A": "x\r\nAction: Logoff"}}, "variables[A]"),
        ({"variables": {TAG_VARIABLE: "forged"}}, "variables"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 100000}, "timeout_s"),
    ],
)
def test_injection_and_bad_values_rejected_before_the_wire(overrides: dict[str, object], field: str) -> None:
    send = FakeSend()
    with pytest.raises(ValueError) as err:
        AmiControl("main", send).originate(good(**overrides))
    assert str(err.value).startswith(f"{field}:")
    assert send.sent == []


def test_bad_dial_context_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="dial_context"):
        AmiControl("main", FakeSend(), dial_context="agents\r\nX: y")


def test_hangup_by_call_id() -> None:
    send = FakeSend()
    AmiControl("main", send).hangup("1795435553.0")
    assert send.sent == [{"Action": "Hangup", "Channel": "1795435553.0", "Cause": "16"}]


@pytest.mark.parametrize("call_id", ["1.0\r\nAction: Command", "/.*/", "", "PJSIP/201-0001;1"])
def test_hangup_rejects_anything_but_a_call_id(call_id: str) -> None:
    send = FakeSend()
    with pytest.raises(ValueError, match="call_id"):
        AmiControl("main", send).hangup(call_id)
    assert send.sent == []


def test_refusal_by_the_pbx_is_an_error_naming_the_action() -> None:
    with pytest.raises(RuntimeError, match="Originate refused: Permission denied"):
        AmiControl("main", FakeSend(response="Error")).originate(good())
