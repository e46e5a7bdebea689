"""The OpenAPI description of the JSON API, checked against the app's own routes, checked for structure
(no validator package: references resolve, path parameters are declared, operation ids are unique),
its auth, the readable page, and that every endpoint answers errors the way the description says."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask, jsonify
from pbxlink.web import create_app
from pbxlink.web.openapi import api_methods

from pbxlink.storage.users import create_user
from tests.unit.test_call_history import as_user, wired
from tests.unit.test_web_api import bearer, config  # noqa: F401  (the config fixture)

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def app(config) -> Flask:  # noqa: F811
    create_user("sue", "long enough", role="supervisor")
    return wired(create_app(config))


def spec_of(app: Flask) -> dict[str, Any]:
    resp = app.test_client().get("/api/v1/openapi.json", headers=bearer("admin", name="spec"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def routes(app: Flask) -> set[tuple[str, str]]:
    """(path as OpenAPI writes it, method) of every /api/v1 route, from the URL map itself."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>:]+)>", r"{\1}", rule.rule).removeprefix("/api/v1")
            found |= {(path, m) for m in api_methods(rule)}
    return found


def test_every_api_route_is_described(app) -> None:
    spec = spec_of(app)
    described = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    assert described == routes(app)
    undescribed = [
        (p, m) for p, ops in spec["paths"].items() for m, op in ops.items() if op.get("x-undocumented")
    ]
    assert undescribed == [], "describe these in web/openapi.py OPERATIONS"
    assert ("/callback-requests", "options") in described  # the CORS preflight is a route of its own
    assert ("/calls/{call_id}", "get") in described


def test_a_route_nobody_described_is_still_listed_and_marked(config) -> None:  # noqa: F811
    app = create_app(config)
    app.add_url_rule("/api/v1/new-thing/<int:thing_id>", "new_thing", lambda thing_id: jsonify(id=thing_id))
    wired(app)
    op = spec_of(app)["paths"]["/new-thing/{thing_id}"]["get"]
    assert op["x-undocumented"] is True
    assert op["parameters"] == [
        {"name": "thing_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    ]


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_the_description_is_well_formed_openapi_3_1(app) -> None:
    spec = spec_of(app)
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] and spec["info"]["version"]
    assert spec["servers"] == [{"url": "/api/v1"}]
    for ref in refs(spec):
        resolve(spec, ref)  # every reference leads somewhere
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearer"]["description"],
    }
    ids = []
    for path, ops in spec["paths"].items():
        assert path.startswith("/") and set(ops) <= HTTP_METHODS
        for method, op in ops.items():
            ids.append(op["operationId"])
            assert op["summary"] and op["responses"]
            assert all(re.fullmatch(r"[1-5]\d\d|default", code) for code in op["responses"]), op["responses"]
            params = [resolve(spec, p["$ref"]) if "$ref" in p else p for p in op.get("parameters", [])]
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert in_path == set(re.findall(r"{(\w+)}", path)), (path, method)
            assert all(p.get("required") for p in params if p["in"] == "path")
            for requirement in op.get("security", spec["security"]):
                assert set(requirement) <= set(schemes)
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert resolve(spec, response["$ref"])["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"
                    }
    assert len(ids) == len(set(ids))
    schemas = spec["components"]["schemas"]
    assert {"Call", "Callback", "Campaign", "Delivery", "Recording", "Error"} <= set(schemas)
    assert schemas["Error"]["required"] == ["error"]
    assert spec["paths"]["/calls"]["get"]["responses"]["200"]["content"]["application/json"]["schema"][
        "properties"
    ]["calls"]["items"] == {"$ref": "#/components/schemas/Call"}
    verb = spec["paths"]["/campaigns/{campaign_id}/{verb}"]["post"]["parameters"][1]
    assert verb["schema"]["enum"] == ["start", "pause", "resume", "stop"]
    assert spec["paths"]["/callback-requests"]["post"]["security"] == []


def test_the_description_needs_credentials_like_the_rest_of_the_api(app) -> None:
    anonymous = app.test_client().get("/api/v1/openapi.json")
    assert (anonymous.status_code, anonymous.get_json()) == (401, {"error": "missing bearer token"})
    assert as_user(app, "sue").get("/api/v1/openapi.json").status_code == 200


def test_the_docs_page_lists_every_endpoint_of_the_description(app) -> None:
    assert app.test_client().get("/api/docs").headers["Location"] == "/login?next=/api/docs"
    page = as_user(app, "sue").get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<script" not in html
    for path, method in routes(app):
        assert f'<span class="method">{method.upper()}</span><code>/api/v1{path}</code>' in html
    assert "not described yet" not in html


def test_every_endpoint_answers_errors_as_json_with_only_an_error_field(app) -> None:
    client = app.test_client()
    wrong = {"Authorization": "Bearer nope"}
    agent = bearer("agent", "201", name="err")
    for path, method in sorted(routes(app)):
        url = "/api/v1" + path.replace("{campaign_id}", "1").replace("{import_id}", "1").replace(
            "{call_id}", "1"
        )
        url = url.replace("{verb}", "start")
        if path in ("/callback-requests",):
            continue  # public: checked below
        resp = client.open(url, method=method.upper(), headers=wrong)
        assert (resp.status_code, list(resp.get_json())) == (401, ["error"]), (method, url)
        if path in ("/campaigns", "/campaigns/{campaign_id}", "/deliveries", "/dnc"):
            resp = client.get(url, headers=agent)
            assert (resp.status_code, list(resp.get_json())) == (403, ["error"]), url
    sup = bearer("supervisor", name="err")
    for url in (
        "/api/v1/calls/999",
        "/api/v1/campaigns/999",
        "/api/v1/campaigns/1/imports/1",
        "/api/v1/nope",
    ):
        resp = client.get(url, headers=sup)
        assert (resp.status_code, list(resp.get_json())) == (404, ["error"]), url
    admin = bearer("admin", name="pager")
    for url in ("/api/v1/calls", "/api/v1/callbacks", "/api/v1/dnc", "/api/v1/deliveries"):
        resp = client.get(url + "?page=0", headers=admin)
        assert (resp.status_code, list(resp.get_json())) == (400, ["error"]), url
    resp = client.delete("/api/v1/calls", headers=sup)
    assert (resp.status_code, list(resp.get_json())) == (405, ["error"])
    unsigned = as_user(app, "sue").post("/api/v1/campaigns/1/start")  # a session without its CSRF token
    assert (unsigned.status_code, list(unsigned.get_json())) == (400, ["error"])
    website = client.post("/api/v1/callback-requests", data="x", content_type="text/plain")
    assert website.status_code in (415, 503) and "error" in website.get_json()
