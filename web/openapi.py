"""The JSON API described as OpenAPI 3.1 (`GET /api/v1/openapi.json`) and as a page (`GET /api/docs`).

The paths come from the app's own routes, so the description never names an endpoint that is
not there; each is described in OPERATIONS. A route with no description is still listed,
marked `x-undocumented` (the page says so and a test fails), so a new endpoint cannot slip in
unseen. The page is rendered on the server from the same description: no Swagger UI, no CDN.
"""

from __future__ import annotations

import re
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from pbxlink import __version__

from .api import DEFAULT_PER_PAGE, MAX_PER_PAGE, authenticate
from .openapi_operations import ERROR_NAMES, OPERATIONS, SCHEMAS, json_body, query, ref

bp = Blueprint("openapi", __name__)
api_bp = Blueprint("openapi_api", __name__, url_prefix="/api/v1")
api_bp.before_request(authenticate)

PREFIX = "/api/v1"
_PARAM = re.compile(r"<(?:([a-z_]+)(?:\(([^)]*)\))?:)?([A-Za-z_]\w*)>")


@api_bp.get("/openapi.json")
def spec() -> Response:
    return jsonify(describe(current_app))


@bp.get("/api/docs")
def docs() -> ResponseReturnValue:
    if not current_user.is_authenticated:  # /api/ answers JSON to the unknown: a person goes to log in
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    spec = describe(current_app)
    return render_template("api/docs.html", spec=spec, endpoints=endpoints(spec))


def endpoints(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operation of `spec` with its references resolved, in path order, for the page."""
    shared = spec["components"]["parameters"]
    found = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            params = [
                shared[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p for p in op.get("parameters", [])
            ]
            security = op.get("security", spec["security"])
            found.append(
                {
                    "method": method.upper(),
                    "path": spec["servers"][0]["url"] + path,
                    "op": op,
                    "params": params,
                    "auth": " or ".join(" + ".join(s) for s in security) or "none",
                    "codes": sorted(op["responses"]),
                }
            )
    return found


def describe(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of every /api/v1 route this app has."""
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path, params = _path_of(rule.rule)
        for method in sorted(api_methods(rule)):
            op = OPERATIONS.get((path, method)) or {"summary": "Not described yet", "x-undocumented": True}
            op = {"operationId": rule.endpoint.replace(".", "_") + f"_{method}", **op}
            if params:
                op["parameters"] = params + list(op.get("parameters", []))
            op.setdefault("responses", {"default": {"$ref": "#/components/responses/Error"}})
            paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pbxlink API",
            "version": __version__,
            "description": "The call log, callbacks, campaigns and deliveries of pbxlink, as JSON.",
        },
        "servers": [{"url": (request.script_root or "") + PREFIX}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "a token from the panel"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": app.config.get("SESSION_COOKIE_NAME", "session"),
                    "description": "the panel's login (its own pages' scripts); a POST adds the csrf header",
                },
                "csrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRFToken",
                    "description": "the page's CSRF token: with a session, a POST needs it too",
                },
            },
            "parameters": {
                "page": query("page", "1-based", {"type": "integer", "minimum": 1, "default": 1}),
                "per_page": query(
                    "per_page",
                    "rows per page",
                    {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE},
                ),
            },
            "responses": {
                name: json_body(ref("Error"), f"{code}: {name}") for code, name in ERROR_NAMES.items()
            }
            | {"Error": json_body(ref("Error"), "an error")},
            "schemas": SCHEMAS,
        },
    }


def api_methods(rule: Any) -> set[str]:
    """The methods a route serves (lower case), without the HEAD and OPTIONS Flask adds by itself."""
    methods = {m.lower() for m in rule.methods or ()} - {"head"}
    if getattr(rule, "provide_automatic_options", True):
        methods.discard("options")
    return methods


def _path_of(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """`/campaigns/<int:id>` as `/campaigns/{id}` (without the prefix) and its path parameters."""
    params: list[dict[str, Any]] = []

    def one(m: re.Match[str]) -> str:
        converter, args, name = m.groups()
        schema: dict[str, Any] = {"type": "integer"} if converter == "int" else {"type": "string"}
        if converter == "any" and args:
            schema["enum"] = [a.strip().strip("'\"") for a in args.split(",")]
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return _PARAM.sub(one, rule)[len(PREFIX) :], params
