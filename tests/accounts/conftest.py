"""Fixtures of the accounts tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from litestar import Litestar

from backend.config import Settings


@pytest.fixture
def use_settings(app: Litestar, settings: Settings) -> Iterator[Callable[..., Settings]]:
    """`use_settings(name=value, …)` runs the app with those settings changed until the
    test ends (handlers read `app.state.settings` on every request)."""

    def change(**changes: object) -> Settings:
        app.state.settings = settings.with_(**changes)
        return app.state.settings  # type: ignore[no-any-return]

    yield change
    app.state.settings = settings
