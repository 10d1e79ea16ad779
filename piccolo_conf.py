"""Piccolo's entry point: the engine comes from the settings (SQLite by default)."""

from piccolo.conf.apps import AppRegistry

from backend.config import get_settings
from backend.db import make_engine

DB = make_engine(get_settings())

APP_REGISTRY = AppRegistry(apps=["backend.piccolo_app"])
