"""The admin panel and JSON API (installed as `pbxlink.web`)."""

from .app import create_app

__all__ = ["create_app"]
