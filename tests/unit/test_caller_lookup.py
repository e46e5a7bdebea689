"""The caller lookups against a real SQLite call log: the call log's newest name and sticky agent,
and the CRMs' contact (fake CRMs, real directory and cache) in front of it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import peewee as pw
import pytest

from pbxlink.cache import MemoryCache
from pbxlink.domain.calls import CallRecord, Transfer
from pbxlink.domain.crm import Contact, CrmUnavailable
from pbxlink.domain.phone import PhoneNumbers
from pbxlink.domain.ports import CallerInfo, CallerLookup
from pbxlink.services.caller_lookup import CallLogLookup, CrmCallerLookup
from pbxlink.services.directory import CallerDirectory
from pbxlink.storage.calls import save_call
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from tests.unit.test_directory import FakeCrm

NOW = datetime.now(UTC).replace(microsecond=0)
NUMBER = "+15551234567"


@pytest.fixture(autouse=True)
def db(tmp_path: Path) -> Iterator[pw.Database]:
    database = connect(f"sqlite:///{tmp_path}/pbxlink.db")
    migrate(database)
    yield database
    database.close()


_ids = iter(range(1_000_000))


def call(minutes_ago: float, **fields: object) -> None:
    """Save an ended call that started `minutes_ago`; inbound from NUMBER unless told otherwise."""
    fields = {"direction": "inbound", "caller": NUMBER, "callee": "100", **fields}
    started = NOW - timedelta(minutes=minutes_ago)
    save_call(
        CallRecord(
            pbx="main",
            call_id=f"c{next(_ids)}",
            started_at=started,
            ended_at=started + timedelta(minutes=1),
            **fields,  # type: ignore[arg-type]
        )
    )


def answered(agent: str, **fields: object) -> dict[str, object]:
    return {"disposition": "answered", "agent": agent, "agents": [agent], **fields}


def test_newest_name_and_last_agent() -> None:
    call(300, caller_name="Jane Old", **answered("202"))
    call(200, caller_name="Jane Doe", **answered("201"))
    call(100, caller_name=None, disposition="missed", miss_reason="no_answer")
    call(50, caller_name="  ", disposition="missed", miss_reason="abandoned")
    lookup: CallerLookup = CallLogLookup()
    assert lookup.lookup(NUMBER) == CallerInfo(name="Jane Doe", hint="201")


def test_a_name_that_is_the_number_itself_is_no_name() -> None:
    call(20, caller_name="Jane Doe")
    call(10, caller_name="+1 555 123 4567")
    assert CallLogLookup().lookup(NUMBER) == CallerInfo(name="Jane Doe")


def test_the_same_number_in_any_format() -> None:
    call(10, caller="5551234567", caller_name="Jane Doe", **answered("201"))
    for asked in (NUMBER, "+1 (555) 123-4567", "15551234567", "5551234567"):
        assert CallLogLookup().lookup(asked) == CallerInfo(name="Jane Doe", hint="201"), asked


def test_outbound_calls_give_the_agent_but_not_the_name() -> None:
    """On a call to the customer, caller_name is the agent's side: it does not name the customer."""
    call(20, caller_name="Jane Doe", disposition="missed", miss_reason="no_answer")
    call(10, direction="outbound", caller="203", caller_name="Agent Smith", callee=NUMBER, **answered("203"))
    assert CallLogLookup().lookup(NUMBER) == CallerInfo(name="Jane Doe", hint="203")


def test_the_agent_who_talked_last_after_a_transfer() -> None:
    transferred = answered("201", agents=["201", "204"], transfers=[Transfer("201", "204", "blind")])
    call(10, caller_name="Jane Doe", **transferred)
    assert CallLogLookup().lookup(NUMBER) == CallerInfo(name="Jane Doe", hint="204")


def test_unknown_number_and_extensions_are_not_found() -> None:
    call(10, caller_name="Jane Doe", **answered("201"))
    call(5, direction="internal", caller="201", caller_name="Agent 201", callee="202", **answered("202"))
    assert CallLogLookup().lookup("+15559999999") is None
    assert CallLogLookup().lookup("201") is None  # an internal caller: too short to look up
    assert CallLogLookup().lookup("4567") is None  # too short: it would match the tail of many numbers
    assert CallLogLookup().lookup("anonymous") is None


def test_only_recent_history_counts() -> None:
    call(60 * 24 * 200, caller_name="Jane Long Ago", **answered("209"))
    assert CallLogLookup().lookup(NUMBER) is None
    assert CallLogLookup(max_age=None).lookup(NUMBER) == CallerInfo(name="Jane Long Ago", hint="209")
    assert CallLogLookup(max_age=timedelta(days=365)).lookup(NUMBER) == CallerInfo("Jane Long Ago", "209")


def test_only_the_newest_calls_are_read() -> None:
    call(30, caller_name="Jane Doe", **answered("201"))
    for minutes in (20, 10):
        call(minutes, disposition="missed", miss_reason="abandoned")
    assert CallLogLookup(max_calls=2).lookup(NUMBER) is None
    assert CallLogLookup(max_calls=3).lookup(NUMBER) == CallerInfo(name="Jane Doe", hint="201")


def crm_lookup(*crms: FakeCrm, fallback: CallerLookup | None = None) -> CrmCallerLookup:
    return CrmCallerLookup(CallerDirectory(crms, MemoryCache(), PhoneNumbers("US")), fallback)


JANE = Contact(
    crm="hub", id="7", name="Jane Doe", company="Acme", owner="sam@acme.test", owner_extension="205"
)


def test_the_crm_contact_names_the_caller_and_its_owner_routes_the_call() -> None:
    call(10, caller_name="JANE MOBILE", **answered("201"))
    lookup: CallerLookup = crm_lookup(FakeCrm("hub", {NUMBER: [JANE]}), fallback=CallLogLookup())
    assert lookup.lookup("+1 (555) 123-4567") == CallerInfo(
        name="Jane Doe", hint="205", contact_id="7", owner="sam@acme.test"
    )


def test_without_an_owner_extension_the_sticky_agent_is_the_hint() -> None:
    call(10, caller_name="JANE MOBILE", **answered("201"))
    jane = Contact(crm="hub", id="7", name="Jane Doe", owner="sam@acme.test")
    hub = FakeCrm("hub", {NUMBER: [jane]})
    assert crm_lookup(hub, fallback=CallLogLookup()).lookup(NUMBER) == CallerInfo(
        name="Jane Doe", hint="201", contact_id="7", owner="sam@acme.test"
    )
    assert crm_lookup(hub).lookup(NUMBER) == CallerInfo(
        name="Jane Doe", contact_id="7", owner="sam@acme.test"
    )


def test_a_company_record_shows_the_company() -> None:
    acme = Contact(crm="pipe", id="42", name="Front desk", company="Acme Corp", kind="organization")
    assert crm_lookup(FakeCrm("pipe", {NUMBER: [acme]})).lookup(NUMBER) == CallerInfo(
        name="Acme Corp", contact_id="42"
    )


def test_unknown_to_every_crm_the_call_log_answers() -> None:
    call(10, caller_name="Jane Doe", **answered("201"))
    down = FakeCrm("down", error=CrmUnavailable("down: timeout"))
    for crms in ([FakeCrm("hub")], [down], [FakeCrm("hub"), down]):
        assert crm_lookup(*crms, fallback=CallLogLookup()).lookup(NUMBER) == CallerInfo("Jane Doe", "201")
    assert crm_lookup(FakeCrm("hub")).lookup(NUMBER) is None
    assert crm_lookup(FakeCrm("hub"), fallback=CallLogLookup()).lookup("+15559999999") is None


def test_extensions_and_anonymous_reach_no_crm() -> None:
    hub = FakeCrm("hub")
    lookup = crm_lookup(hub, fallback=CallLogLookup())
    assert lookup.lookup("201") is None
    assert lookup.lookup("anonymous") is None
    assert hub.asked == []
