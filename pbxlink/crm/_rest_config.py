"""Reading the generic REST connector's `[[crm]]` keys: URL templates, tables, auth headers."""

from __future__ import annotations

import base64
import re
from urllib.parse import urlsplit

from pbxlink.crm._rest_mapping import used
from pbxlink.crm.options import Options

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def url_template(opts: Options, key: str, names: frozenset[str] = frozenset()) -> str | None:
    """An optional URL template whose placeholders are among `names`, none of them in the host."""
    if opts.get(key) is None:
        return None
    url = opts.url(key)
    unknown = sorted(used(url) - names)
    if unknown:
        known = ", ".join(f"{{{n}}}" for n in sorted(names)) or "none"
        raise opts.fail(key, f"unknown placeholder {{{unknown[0]}}} (known: {known})")
    parts = urlsplit(url)
    if "{" in parts.scheme + parts.netloc:
        raise opts.fail(key, "placeholders may stand in the path and the query only, never in the host")
    return url


def choice(opts: Options, key: str, choices: tuple[str, ...]) -> str:
    value = opts.get(key, choices[0])
    if not isinstance(value, str) or value.lower() not in [c.lower() for c in choices]:
        raise opts.fail(key, f"expected one of {', '.join(choices)}")
    return next(c for c in choices if c.lower() == value.lower())


def dotted_path(opts: Options, key: str) -> str | None:
    value = opts.get(key)
    if value is not None and not isinstance(value, str):
        raise opts.fail(key, 'expected a dotted path like "data.items"')
    return value


def table(opts: Options, key: str, known: set[str] | tuple[str, ...], values: bool = False) -> dict[str, str]:
    """A table whose keys (or values) must be among `known`."""
    got = opts.mapping(key)
    bad = sorted(set(got.values() if values else got) - set(known))
    if bad:
        raise opts.fail(key, f"{bad[0]!r} is not one of {', '.join(sorted(known))}")
    return got


def headers_and_secrets(opts: Options) -> tuple[dict[str, str], list[str]]:
    """The static headers plus the auth header, and the secrets among them."""
    auth = choice(opts, "auth", ("none", "bearer", "basic", "header"))
    headers, secrets = opts.mapping("headers"), []
    if auth == "bearer":
        secrets = [opts.secret("token")]
        headers["Authorization"] = f"Bearer {secrets[0]}"
    elif auth == "basic":
        password = opts.secret("password")
        secrets = [password, base64.b64encode(f"{opts.string('username')}:{password}".encode()).decode()]
        headers["Authorization"] = f"Basic {secrets[1]}"
    elif auth == "header":
        secrets = [opts.secret("token")]
        headers[opts.string("header_name")] = secrets[0]
    for name, value in headers.items():
        if not _HEADER_NAME.match(name) or "\r" in value or "\n" in value:
            key = "headers" if name in opts.mapping("headers") else "header_name"
            raise opts.fail(key, f"{name[:40]!r}: a header name is one token, and no value may hold CR or LF")
    return headers, secrets
