"""What the OpenAPI description says of each /api/v1 endpoint: its operations and the shapes they answer.

`web/openapi.py` walks the app's routes and takes each one's description from OPERATIONS,
keyed by (path below /api/v1, method); the shapes follow what the endpoints' modules emit
(`CallRecord.to_dict`, the stores' `to_dict`s).
"""

from __future__ import annotations

from typing import Any

from pbxlink.domain.calls import RECORD_FIELDS

from .api import MAX_PER_PAGE

OBJECT = {"type": "object"}
TIME = {"type": ["string", "null"], "format": "date-time"}


def _str(*enum: str, null: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"] if null else "string"}
    if enum:
        schema["enum"] = [*enum, None] if null else list(enum)
    return schema


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"$ref": f"#/components/responses/{ERROR_NAMES[c]}"} for c in codes}


def query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema or {"type": "string"}}


def _paged(key: str, item: str, **extra: dict[str, Any]) -> dict[str, Any]:
    props = {key: {"type": "array", "items": ref(item)}, **PAGE_FIELDS, **extra}
    return {"type": "object", "required": [key, "page", "per_page", "total"], "properties": props}


ERROR_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    413: "TooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    503: "Unavailable",
}
PAGE_FIELDS: dict[str, Any] = {
    "page": {"type": "integer", "minimum": 1},
    "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
    "total": {"type": "integer", "minimum": 0, "description": "how many match in all"},
    "next": {"type": ["string", "null"], "format": "uri", "description": "the next page; null on the last"},
}
PAGING = [
    {"$ref": "#/components/parameters/page"},
    {"$ref": "#/components/parameters/per_page"},
]
CALL_TYPES: dict[str, dict[str, Any]] = {
    "direction": _str("inbound", "outbound", "internal", null=False),
    "agents": {"type": "array", "items": {"type": "string"}, "description": "who talked, in order"},
    "started_at": {"type": "string", "format": "date-time"},
    "answered_at": TIME,
    "ended_at": TIME,
    "wait_seconds": {"type": ["number", "null"]},
    "talk_seconds": {"type": ["number", "null"]},
    "disposition": _str("answered", "missed"),
    "miss_reason": _str("no_answer", "busy", "abandoned", "queue_timeout", "not_offered", "failed"),
    "hangup_by": _str("customer", "agent", "system"),
    "transfers": {"type": "array", "items": ref("Transfer")},
    "end_seen": {"type": "boolean", "description": "false: ended by a resync, not by the PBX's event"},
    "amd": _str("human", "machine", "notsure"),
}
SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "what went wrong, in one sentence for a person"},
            "field": {"type": "string", "description": "callback-requests only: the form field refused"},
        },
    },
    "Transfer": {
        "type": "object",
        "properties": {
            "from": _str(),
            "to": _str(),
            "kind": _str("blind", "attended", "redirect", null=False),
        },
    },
    "Call": {
        "type": "object",
        "required": ["id", *RECORD_FIELDS],
        "properties": {"id": {"type": "integer"}} | {f: CALL_TYPES.get(f, _str()) for f in RECORD_FIELDS},
    },
    "CallWithCallbacks": {
        "allOf": [
            ref("Call"),
            {
                "type": "object",
                "properties": {
                    "callbacks": {
                        "type": "array",
                        "description": "the callback its miss scheduled, or the one it was an attempt of",
                        "items": {
                            "type": "object",
                            "properties": {
                                "callback": {"type": "integer"},
                                "status": {"type": "string"},
                                "as": _str("missed call", "callback attempt", null=False),
                                "missed_call": _str(),
                            },
                        },
                    }
                },
            },
        ]
    },
    "Callback": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "policy": {"type": "string"},
            "pbx": {"type": "string"},
            "number": {"type": "string"},
            "name": _str(),
            "source": _str("missed_call", "web", "manual", null=False),
            "missed_call": _str() | {"description": "<pbx>:<call_id> of the missed call"},
            "queue": _str(),
            "agent": _str(),
            "status": _str("pending", "in_progress", "done", "failed", "cancelled", null=False),
            "due_at": TIME,
            "attempts": {"type": "integer"},
            "last_outcome": _str(),
            "reason": _str(),
            "created_at": TIME,
            "updated_at": TIME,
        },
    },
    "Campaign": {
        "type": "object",
        "description": "settings, status, the commands that apply now, and live progress",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "pbx": {"type": "string"},
            "mode": _str("broadcast", "agent_first", null=False),
            "status": {"type": "string"},
            "timezone": {"type": "string"},
            "window": {"type": "string", "examples": ["09:00-20:00"]},
            "max_concurrent": {"type": "integer"},
            "per_minute": {"type": "number"},
            "retries": OBJECT,
            "commands": {"type": "array", "items": _str("start", "pause", "resume", "stop", null=False)},
            "progress": OBJECT,
            "created_at": TIME,
            "started_at": TIME,
            "finished_at": TIME,
        },
    },
    "Import": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string"},
            "fraction": {"type": "number", "minimum": 0, "maximum": 1},
            "accepted": {"type": ["integer", "null"]},
            "rejected": {"type": ["integer", "null"]},
            "rejects_url": _str(),
        },
    },
    "Delivery": {
        "type": "object",
        "description": "an outbox row: a CRM call log or a webhook (the payload is the call itself)",
        "properties": {
            "id": {"type": "integer"},
            "kind": _str("crm_log", "webhook", null=False),
            "target": {"type": "string", "description": "the CRM's or webhook's configured name"},
            "key": {"type": "string", "description": "<pbx>:<call_id> for a call"},
            "status": _str("pending", "failed", "done", null=False),
            "attempts": {"type": "integer"},
            "next_at": TIME,
            "last_error": _str(),
            "result": _str() | {"description": "e.g. the CRM's id of the logged call"},
            "created_at": TIME,
            "done_at": TIME,
        },
    },
    "DncEntry": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "number": {"type": "string"},
            "reason": _str(),
            "added_by": _str(),
            "added_at": TIME,
        },
    },
    "Recording": {
        "type": "object",
        "description": "a recording as the index keeps it; served by the panel's /recordings pages",
        "properties": {
            "id": {"type": "integer"},
            "pbx": _str(),
            "call_id": _str(),
            "started_at": {"type": "string", "format": "date-time"},
            "agent": _str(),
            "queue": _str(),
            "duration": {"type": ["number", "null"]},
            "format": _str(),
            "status": _str("present", "changed", "missing", "deleted", null=False),
            "legal_hold": {"type": "boolean"},
        },
    },
}
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("/calls", "get"): {
        "summary": "List calls, newest first",
        "description": "Agents get only the calls they talked on; asking for another agent is 403.",
        "parameters": [
            *PAGING,
            query("since", "started at or after: an ISO date or date-time (naive = UTC)"),
            query("until", "started before; a bare date includes that whole day"),
            query("number", "caller or callee, however written"),
            query("agent", "an extension that talked on the call"),
            query("disposition", "answered or missed", _str("answered", "missed", null=False)),
        ],
        "responses": {"200": json_body(_paged("calls", "Call"), "one page of calls")}
        | _errors(400, 401, 403),
    },
    ("/calls/{call_id}", "get"): {
        "summary": "One call, with the callbacks it is linked to",
        "responses": {"200": json_body(ref("CallWithCallbacks"), "the call")} | _errors(401, 404),
    },
    ("/callbacks", "get"): {
        "summary": "List callbacks, newest first (agents: theirs)",
        "parameters": [*PAGING, query("status", "one state; default every state")],
        "responses": {
            "200": json_body(_paged("callbacks", "Callback", counts=OBJECT), "one page of callbacks")
        }
        | _errors(400, 401),
    },
    ("/callback-requests", "post"): {
        "summary": "A website visitor asks to be called back (no credentials; CORS for the configured sites)",
        "security": [],
        "requestBody": {
            "required": True,
            "content": {
                t: {
                    "schema": {
                        "type": "object",
                        "required": ["number"],
                        "properties": {
                            "number": {"type": "string"},
                            "name": {"type": "string"},
                            "preferred_time": {"type": "string", "format": "date-time"},
                        },
                    }
                }
                for t in ("application/json", "application/x-www-form-urlencoded")
            },
        },
        "responses": {
            "201": json_body(OBJECT, "scheduled: {status, due_at}"),
            "200": json_body(OBJECT, "one was already scheduled for this number"),
        }
        | _errors(400, 403, 413, 415, 429, 503),
    },
    ("/callback-requests", "options"): {
        "summary": "CORS preflight for a configured site",
        "security": [],
        "responses": {"204": {"description": "the site may post"}} | _errors(403),
    },
    ("/campaigns", "get"): {
        "summary": "Every campaign with its live progress (supervisors and admins)",
        "responses": {
            "200": json_body(
                {"type": "object", "properties": {"campaigns": {"type": "array", "items": ref("Campaign")}}},
                "the campaigns",
            )
        }
        | _errors(401, 403),
    },
    ("/campaigns/{campaign_id}", "get"): {
        "summary": "One campaign",
        "responses": {"200": json_body(ref("Campaign"), "the campaign")} | _errors(401, 403, 404),
    },
    ("/campaigns/{campaign_id}/{verb}", "post"): {
        "summary": "Start, pause, resume or stop a campaign",
        "description": "A command that does not apply to the campaign's state is 409 with the reason.",
        "security": [{"bearer": []}, {"session": [], "csrf": []}],
        "responses": {"200": json_body(OBJECT, "{result, campaign}")} | _errors(400, 401, 403, 404, 409),
    },
    ("/campaigns/{campaign_id}/imports/{import_id}", "get"): {
        "summary": "The progress of a contact import",
        "responses": {"200": json_body(ref("Import"), "the import")} | _errors(401, 403, 404),
    },
    ("/deliveries", "get"): {
        "summary": "CRM and webhook deliveries (admins); default: the failed and retrying ones",
        "parameters": [*PAGING, query("status", "failed, retrying, pending or done")],
        "responses": {
            "200": json_body(
                _paged("deliveries", "Delivery", pending={"type": "integer"}, targets={"type": "array"}),
                "one page of deliveries",
            )
        }
        | _errors(400, 401, 403),
    },
    ("/dnc", "get"): {
        "summary": "The do-not-call list (supervisors and admins)",
        "parameters": [*PAGING, query("search", "digits of the number or words of the reason")],
        "responses": {"200": json_body(_paged("entries", "DncEntry"), "one page of entries")}
        | _errors(400, 401, 403),
    },
    ("/openapi.json", "get"): {
        "summary": "This description",
        "responses": {"200": json_body(OBJECT, "an OpenAPI 3.1 document")} | _errors(401),
    },
}
