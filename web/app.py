"""The Flask app factory: one blueprint per feature, strict security headers, a DB connection per request."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from pbxlink.config import Config
from pbxlink.domain.ports import Bus
from pbxlink.storage.models import db_proxy
from pbxlink.storage.settings import web_secret_key

from . import (
    account,
    api,
    auth,
    call_history,
    call_page,
    callback_policies,
    callback_requests,
    callbacks,
    calls,
    campaigns,
    crm,
    dashboard,
    openapi,
    outbox,
    pops,
    recording_pages,
    recordings,
    retention,
    users,
)

log = logging.getLogger(__name__)

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def create_app(config: Config, bus: Bus | None = None, **parts: Any) -> Flask:
    """Build the panel and the JSON API; the database must already be connected (models.db_proxy bound).

    `parts` are the running services the pages steer or read (`pops`: the PopHub,
    `directory`: the CallerDirectory, `connectors`: the CRM connectors, `outbox_worker`,
    `callbacks`: the CallbackService),
    kept as `app.extensions["pbxlink.<name>"]`; a page whose part is missing says so.
    """
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=web_secret_key(config),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="pbxlink_session",
        SESSION_COOKIE_SECURE=(config.web.public_url or "").lower().startswith("https://"),
        # Renewed by every request (Flask's default is 31 days).
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        # The CSRF token lives as long as the session, so a login page left open does not expire.
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the record's field order
    app.extensions["pbxlink.bus"] = bus
    app.extensions["pbxlink.config"] = config
    for name in ("pops", "directory", "connectors", "outbox_worker", "callbacks"):
        app.extensions[f"pbxlink.{name}"] = parts.pop(name, None)
    if parts:
        raise TypeError(f"create_app: unknown parts {sorted(parts)}")

    csrf = CSRFProtect(app)
    auth.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(calls.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(pops.bp)
    app.register_blueprint(crm.bp)
    app.register_blueprint(crm.hooks)
    app.register_blueprint(outbox.bp)
    app.register_blueprint(outbox.api_bp)
    app.register_blueprint(recordings.bp)
    app.register_blueprint(recording_pages.bp)
    app.register_blueprint(retention.bp)
    app.register_blueprint(callback_requests.bp)
    app.register_blueprint(callback_policies.bp)  # before callbacks.bp: /callbacks/policies is not an id
    app.register_blueprint(callbacks.bp)
    app.register_blueprint(callbacks.api_bp)
    app.register_blueprint(call_history.bp)
    app.register_blueprint(call_page.bp)  # /calls/<int:id>: no clash with /calls/stream or /calls/history
    app.register_blueprint(openapi.bp)  # /api/docs
    app.register_blueprint(openapi.api_bp)  # /api/v1/openapi.json
    app.register_blueprint(account.bp)
    app.register_blueprint(users.bp)
    campaigns.register(app)  # campaigns, their imports, the do-not-call list, and their API
    csrf.exempt(api.bp)  # JSON for bearer tokens: not ambient credentials
    csrf.exempt(crm.hooks)  # called by the CRMs, authenticated by the secret in the URL
    csrf.exempt(callback_requests.bp)  # posted cross-origin by the business's website: no session to ride

    app.before_request(_open_db)
    app.teardown_request(_close_db)
    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.add_url_rule("/healthz", "healthz", _healthz)
    return app


def _open_db() -> None:
    if request.endpoint != "static":
        g.db_opened = db_proxy.connect(reuse_if_open=True)


def _close_db(_exc: BaseException | None) -> None:
    if g.pop("db_opened", False) and not db_proxy.is_closed():
        db_proxy.close()


def _security_headers(response: Response) -> Response:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _healthz() -> tuple[Response, int]:
    try:
        db_proxy.execute_sql("SELECT 1")
    except Exception:
        log.exception("health check: the database does not answer")
        return jsonify(status="error", error="database unavailable"), 503
    return jsonify(status="ok"), 200


def _csrf_error(exc: CSRFError) -> tuple[str, int]:
    message = "The form expired or was not sent by this site; reload the page and try again."
    return render_template("error.html", message=message), 400


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    if exc.code is None or exc.code < 400:
        return exc.get_response()
    if auth.wants_json():
        return jsonify(error=exc.description or exc.name), exc.code
    return render_template("error.html", message=f"{exc.code} {exc.name}"), exc.code
