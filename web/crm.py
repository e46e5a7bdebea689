"""The CRM admin page (test lookup, checks, cache) and the hook a CRM calls when a contact changes.

The test lookup asks each CRM directly, past the cache, and shows exactly what came back
or exactly what went wrong: that is what an admin needs while setting a connector up.
A CRM's change webhook (HubSpot, Pipedrive, Bitrix24 … or anything that can POST) is
authenticated by a per-CRM secret in its URL, derived from the panel's secret key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from pbxlink.config import Config, CrmConfig, redact_url
from pbxlink.domain.crm import Connector, CrmError
from pbxlink.domain.phone import numbers

from .auth import admin_required

bp = Blueprint("crm", __name__, url_prefix="/admin/crm")
hooks = Blueprint("crm_hooks", __name__, url_prefix="/hooks/crm")

#: option names whose values are never shown, only whether they are set
SECRET_WORDS = ("token", "secret", "password", "key", "webhook")
MAX_HOOK_BODY = 256 * 1024
MAX_INVALIDATIONS = 500  # per hook call: a CRM batch is small; more is a mistake or an attack


def _connectors() -> list[Connector]:
    return list(current_app.extensions.get("pbxlink.connectors") or [])


def _config() -> Config:
    cfg: Config = current_app.extensions["pbxlink.config"]
    return cfg


def hook_token(name: str) -> str:
    """The secret part of a CRM's change-hook URL: stable while the panel's secret key is."""
    key = str(current_app.secret_key).encode()
    return hmac.new(key, f"crm-hook:{name}".encode(), hashlib.sha256).hexdigest()[:32]


def shown_options(crm: CrmConfig) -> list[tuple[str, str]]:
    """A CRM's options for the page: secrets masked, URLs without passwords."""
    shown = []
    for key, value in sorted(crm.options.items()):
        if any(word in key.lower() for word in SECRET_WORDS):
            shown.append((key, "set (hidden)" if value else "not set"))
        elif isinstance(value, str) and "://" in value:
            shown.append((key, redact_url(value)))
        else:
            shown.append((key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)))
    return shown


@bp.get("/")
@admin_required
def index() -> str:
    cfg = _config()
    directory = current_app.extensions.get("pbxlink.directory")
    hook_urls = {
        c.name: url_for("crm_hooks.changed", name=c.name, token=hook_token(c.name), _external=True)
        for c in cfg.crm
    }
    return render_template(
        "crm/index.html",
        crms=cfg.crm,
        shown_options=shown_options,
        hook_urls=hook_urls,
        cache=cfg.cache,
        cache_backend="Redis" if cfg.redis_url else "in-process",
        has_directory=directory is not None,
        region=numbers().default_region,
    )


@bp.post("/test")
@admin_required
def test_lookup() -> str:
    """Look a number up in each (or one) CRM, past the cache; show the raw result or the exact error."""
    number = request.form.get("number", "").strip()
    only = request.form.get("crm") or None
    query = numbers().query(number)
    results: list[dict[str, Any]] = []
    if query is None:
        flash(f"{number[:64]!r} is not a phone number (it needs at least 7 digits).", "error")
    else:
        for connector in _connectors():
            if only and connector.name != only:
                continue
            found = lambda c=connector: [x.to_dict() for x in c.find_contacts(query)]  # noqa: E731
            results.append(_probe(connector, found))
    return render_template(
        "crm/result.html", action="Test lookup", number=number, query=query, results=results
    )


@bp.post("/check")
@admin_required
def check() -> str:
    results = []
    for connector in _connectors():
        r = connector.check()
        results.append({"crm": connector.name, "kind": connector.kind, "ok": r.ok, "raw": r.detail})
    return render_template("crm/result.html", action="Check", number=None, query=None, results=results)


@bp.post("/cache/clear")
@admin_required
def clear_cache() -> ResponseReturnValue:
    directory = current_app.extensions.get("pbxlink.directory")
    if directory is None:
        abort(503, "the caller directory is not running")
    number = request.form.get("number", "").strip()
    if number:
        dropped = directory.invalidate(number)
        flash(f"Forgot the cached lookup of {number[:64]} ({dropped} entries).", "ok")
    else:
        dropped = directory.clear()
        flash(f"Cache cleared: {dropped} cached lookups dropped.", "ok")
    return redirect(url_for("crm.index"))


def _probe(connector: Connector, run: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        raw: Any = run()
        ok, error = True, None
    except CrmError as exc:
        raw, ok, error = None, False, str(exc)
    except Exception as exc:  # a connector bug: show it to the admin rather than a 500
        raw, ok, error = None, False, f"{type(exc).__name__}: {exc}"
    return {
        "crm": connector.name,
        "kind": connector.kind,
        "ok": ok,
        "ms": round((time.perf_counter() - started) * 1000),
        "raw": json.dumps(raw, indent=2, ensure_ascii=False) if ok else None,
        "error": error,
    }


@hooks.post("/<name>/<token>")
def changed(name: str, token: str) -> ResponseReturnValue:
    """A CRM says contacts changed: forget what is cached for them, so the next pop is fresh."""
    if name not in {c.name for c in _config().crm} or not hmac.compare_digest(token, hook_token(name)):
        abort(404)
    directory = current_app.extensions.get("pbxlink.directory")
    if directory is None:
        abort(503, "the caller directory is not running")
    if (request.content_length or 0) > MAX_HOOK_BODY:
        abort(413)
    payload = _payload()
    ids, nums = _changed(payload)
    dropped = 0
    for contact_id in list(ids)[:MAX_INVALIDATIONS]:
        dropped += directory.invalidate(crm=name, contact_id=contact_id)
    for number in list(nums)[:MAX_INVALIDATIONS]:
        dropped += directory.invalidate(number)
    return jsonify(contacts=len(ids), numbers=len(nums), dropped=dropped)


def _payload() -> Any:
    if request.is_json:
        return request.get_json(silent=True)
    return request.form.to_dict(flat=True)  # Bitrix24 posts forms: data[FIELDS][ID]=42


def _changed(payload: Any) -> tuple[set[str], set[str]]:
    """Contact ids and numbers named by the common change-webhook shapes.

    HubSpot: a list of {"objectId": …}; Pipedrive: {"meta": {"id": …}} or {"current": {"id": …}}
    (v2: {"data": {"id": …}}); Bitrix24: data[FIELDS][ID]; anything else: {"contact_ids": […],
    "numbers": […]}.
    """
    ids: set[str] = set()
    nums: set[str] = set()
    for item in payload if isinstance(payload, list) else [payload]:
        if not isinstance(item, Mapping):
            continue
        ids.update(_ids(item))
        for number in item.get("numbers") or ():
            if isinstance(number, str):
                nums.add(number)
    return ids, nums


def _ids(item: Mapping[str, Any]) -> Iterator[str]:
    for value in (
        item.get("objectId"),
        _get(item, "meta", "id"),
        _get(item, "current", "id"),
        _get(item, "data", "id"),
        item.get("data[FIELDS][ID]"),
    ):
        if isinstance(value, int | str) and str(value).strip():
            yield str(value).strip()[:64]
    contact_ids: Sequence[Any] = item.get("contact_ids") or ()
    for value in contact_ids:
        if isinstance(value, int | str):
            yield str(value)[:64]


def _get(item: Mapping[str, Any], *path: str) -> Any:
    value: Any = item
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value
