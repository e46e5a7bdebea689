"""EslControl: nothing unsafe reaches the wire; good requests go out exactly as FreeSWITCH expects them."""

from __future__ import annotations

import logging
from concurrent.futures import Future

import pytest

from pbxlink.domain.ports import OriginateRequest
from pbxlink.esl.control import TAG_VARIABLE, EslControl

CALL = "2aecfbe6-7e3b-4ef3-8385-8923ca807855"


class FakeLink:
    """Records the commands it was asked to send and answers like FreeSWITCH."""

    def __init__(self, answer: str = "+OK\n") -> None:
        self.api_sent: list[str] = []
        self.bgapi_sent: list[tuple[str, str | None]] = []
        self.jobs: list[Future[str]] = []
        self.answer = answer

    def api(self, command: str) -> str:
        self.api_sent.append(command)
        return self.answer

    def bgapi(self, command: str, *, job_uuid: str | None = None) -> Future[str]:
        self.bgapi_sent.append((command, job_uuid))
        self.jobs.append(Future())
        return self.jobs[-1]


def good(**overrides: object) -> OriginateRequest:
    fields: dict[str, object] = {
        "endpoint": "201",
        "exten": "+15557654321",
        "context": "default",
        "caller_id": '"Click to Call" <+15557654321>',
        "variables": {"campaign": "spring-2026"},
    }
    fields.update(overrides)
    return OriginateRequest(**fields)  # type: ignore[arg-type]


def test_originate_rings_the_agent_then_dials_the_number_through_the_dialplan() -> None:
    link = FakeLink()
    handle = EslControl("fs", link).originate(good())
    ((command, job),) = link.bgapi_sent
    assert command == (
        "originate {origination_caller_id_number=+15557654321,origination_caller_id_name='Click to Call',"
        f"originate_timeout=30,campaign=spring-2026,{TAG_VARIABLE}={handle.tag}}}"
        "user/201 +15557654321 XML default"
    )
    assert job == handle.tag and handle.pbx == "fs"


def test_originate_can_bridge_straight_to_a_number_dial_string() -> None:
    link = FakeLink()
    control = EslControl(
        "fs", link, agent_dial="user/{ext}@pbx.example.com", number_dial="sofia/gateway/carrier/{number}"
    )
    handle = control.originate(good(caller_id=None, variables={}, timeout_s=20))
    assert link.bgapi_sent[0][0] == (
        "originate {origination_caller_id_number=+15557654321,origination_caller_id_name=+15557654321,"
        f"originate_timeout=20,{TAG_VARIABLE}={handle.tag}}}"
        "user/201@pbx.example.com &bridge(sofia/gateway/carrier/+15557654321)"
    )


@pytest.mark.parametrize(
    ("caller_id", "name", "number"),
    [
        ('"ACME" <+15550001000>', "ACME", "+15550001000"),
        ("ACME Support <1000>", "'ACME Support'", "1000"),
        ("<1000>", "1000", "1000"),
        ("+15550001000", "+15550001000", "+15550001000"),
        ("Renée Côté <*97>", "'Renée Côté'", "*97"),
    ],
)
def test_caller_id_forms(caller_id: str, name: str, number: str) -> None:
    link = FakeLink()
    EslControl("fs", link).originate(good(caller_id=caller_id))
    command = link.bgapi_sent[0][0]
    assert f"origination_caller_id_number={number}," in command
    assert f"origination_caller_id_name={name}," in command


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"endpoint": "201\napi system rm -rf /"}, "endpoint"),
        ({"endpoint": "201 &park"}, "endpoint"),
        ({"endpoint": "sofia/internal/201"}, "endpoint"),
        ({"endpoint": ""}, "endpoint"),
        ({"exten": "100\n\nbgapi system reboot"}, "exten"),
        ({"exten": "1 00"}, "exten"),
        ({"exten": "100,x=y"}, "exten"),
        ({"context": "default XML public"}, "context"),
        ({"context": "de\x00fault"}, "context"),
        ({"caller_id": "Bob\r\n<100>"}, "caller_id"),
        ({"caller_id": "Bob, inc <100>"}, "caller_id"),
        ({"caller_id": "Bob' <100>"}, "caller_id"),
        ({"caller_id": "Bob <100\n>"}, "caller_id"),
        ({"caller_id": "Bob"}, "caller_id"),
        ({"variables": {"bad name": "x"}}, "variables"),
        ({"variables": {"1abc": "x"}}, "variables"),
        ({"variables": {"a": "x,b=2"}}, "variables[a]"),
        ({"variables": {"a": "x}sofia/gateway/evil/1 &park{"}}, "variables[a]"),
        ({"variables": {"a": "it's"}}, "variables[a]"),
        ({"variables": {"a": "^^:b=1:c=2"}}, "variables[a]"),
        ({"variables": {"a": "x\nContent-Length: 5"}}, "variables[a]"),
        ({"variables": {"a": "x\\"}}, "variables[a]"),
        ({"variables": {"a": "x" * 257}}, "variables[a]"),
        ({"variables": {TAG_VARIABLE: "forged"}}, "variables"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 100000}, "timeout_s"),
        ({"timeout_s": True}, "timeout_s"),
    ],
)
def test_bad_originate_input_is_rejected_before_the_wire(overrides: dict[str, object], field: str) -> None:
    link = FakeLink()
    with pytest.raises(ValueError, match=f"^{field.replace('[', '.').replace(']', '.')}"):
        EslControl("fs", link).originate(good(**overrides))
    assert link.bgapi_sent == []


def test_with_a_bridge_dial_string_a_name_still_goes_through_the_dialplan() -> None:
    link = FakeLink()
    control = EslControl("fs", link, number_dial="sofia/gateway/carrier/{number}")
    control.originate(good(exten="sales"))  # a queue: what a customer-first callback connects to
    assert " sales XML " in link.bgapi_sent[-1][0]
    with pytest.raises(ValueError, match=r"^exten"):
        control.originate(good(exten="12 34\nbgapi system reboot"))


def test_an_outside_number_rings_first_through_the_dialplan_or_the_gateway() -> None:
    link = FakeLink()
    EslControl("fs", link).originate(good(endpoint="+15551234567", exten="support"))
    assert "}loopback/+15551234567/default support XML " in link.bgapi_sent[-1][0]
    EslControl("fs", link, number_dial="sofia/gateway/carrier/{number}").originate(
        good(endpoint="+15551234567", exten="support")
    )
    assert "}sofia/gateway/carrier/+15551234567 support XML " in link.bgapi_sent[-1][0]
    with pytest.raises(ValueError, match=r"^endpoint"):
        EslControl("fs", link).originate(good(endpoint="+1555 1234567"))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"agent_dial": "user/201"}, "agent_dial"),
        ({"agent_dial": "user/{ext} &park"}, "agent_dial"),
        ({"agent_dial": "user/{ext},x"}, "agent_dial"),
        ({"number_dial": "sofia/gateway/x/"}, "number_dial"),
        ({"number_dial": "sofia/gateway/x/{number}\n"}, "number_dial"),
    ],
)
def test_bad_dial_templates_are_rejected(kw: dict[str, str], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}"):
        EslControl("fs", FakeLink(), **kw)


def test_call_commands_go_out_exactly() -> None:
    link = FakeLink()
    control = EslControl("fs", link)
    control.hangup(CALL)
    control.transfer(CALL, "202", "default")
    control.start_recording(CALL, "/var/lib/freeswitch/recordings/2026/call-1.wav")
    control.stop_recording(CALL, "/var/lib/freeswitch/recordings/2026/call-1.wav")
    control.stop_recording(CALL)
    control.set_variable(CALL, "cti_note", "VIP caller")
    assert link.api_sent == [
        f"uuid_kill {CALL} NORMAL_CLEARING",
        f"uuid_transfer {CALL} 202 XML default",
        f"uuid_record {CALL} start /var/lib/freeswitch/recordings/2026/call-1.wav",
        f"uuid_record {CALL} stop /var/lib/freeswitch/recordings/2026/call-1.wav",
        f"uuid_record {CALL} stop all",
        f"uuid_setvar {CALL} cti_note VIP caller",
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.hangup("not-a-uuid"),
        lambda c: c.hangup(f"{CALL}\napi system reboot"),
        lambda c: c.hangup(f"{CALL} ALLOTTED_TIMEOUT"),
        lambda c: c.transfer(CALL, "202 XML evil", "default"),
        lambda c: c.transfer(CALL, "202", "default\n"),
        lambda c: c.start_recording(CALL, "relative.wav"),
        lambda c: c.start_recording(CALL, "/var/rec/../../etc/passwd"),
        lambda c: c.start_recording(CALL, "/var/rec/a b.wav"),
        lambda c: c.start_recording(CALL, "/var/rec/${uuid}.wav"),
        lambda c: c.stop_recording(CALL, "/tmp/x.wav\n"),
        lambda c: c.set_variable(CALL, "bad name", "x"),
        lambda c: c.set_variable(CALL, "note", "line\nContent-Type: x"),
        lambda c: c.set_variable(CALL, "note", "a,b"),
    ],
)
def test_bad_call_commands_are_rejected_before_the_wire(call: object) -> None:
    link = FakeLink()
    with pytest.raises(ValueError):
        call(EslControl("fs", link))  # type: ignore[operator]
    assert link.api_sent == []


def test_a_refusal_is_an_error_naming_the_command() -> None:
    control = EslControl("fs", FakeLink("-ERR No such channel!\n"))
    with pytest.raises(RuntimeError, match="ESL fs: uuid_kill refused: -ERR No such channel!"):
        control.hangup(CALL)


def test_an_originate_that_fails_on_the_pbx_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    link = FakeLink()
    control = EslControl("fs", link)
    ok, busy, lost = (control.originate(good()) for _ in range(3))
    with caplog.at_level(logging.WARNING, logger="pbxlink.esl.control"):
        link.jobs[0].set_result("+OK 644c1ca0-b6c0-4de7-b10a-6bb2463faffa\n")
        link.jobs[1].set_result("-ERR USER_BUSY\n")
        link.jobs[2].set_exception(ConnectionError("link lost before the answer"))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert (
        f"ESL fs: originate user/201 to +15557654321 (tag {busy.tag}) failed: -ERR USER_BUSY" in messages[0]
    )
    assert lost.tag in messages[1] and "link lost" in messages[1] and ok.tag not in "".join(messages)


def test_a_broadcast_without_a_caller_id_shows_the_sites_own_not_its_extension() -> None:
    link = FakeLink()
    control = EslControl("fs", link)
    control.originate(
        OriginateRequest(endpoint="+15557654321", exten="s", context="pbxlink-campaign-broadcast")
    )
    ((command, _),) = link.bgapi_sent
    assert "origination_caller_id" not in command
    assert (
        command.startswith("originate {originate_timeout=30,") and "loopback/+15557654321/default" in command
    )
