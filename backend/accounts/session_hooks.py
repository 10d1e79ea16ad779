"""Who else must hear that sessions ended: a lower layer cannot call a higher one, so the
higher one registers here (`notify` removes the ended sessions' push devices) and every
place that ends sessions calls `sessions_ended` inside its own transaction.

Sessions end by signing out, by a refresh token presented twice, by a password change
(every other session of the account), and by an account sealed or disabled (every session:
the principal refuses them from the next request on)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class EndedSessions:
    """The sessions `sessions`, and every session of the accounts `accounts` except `kept`."""

    sessions: tuple[uuid.UUID, ...] = ()
    accounts: tuple[int, ...] = ()
    kept: uuid.UUID | None = None


SessionsEndedHook = Callable[[EndedSessions], Awaitable[None]]

_hooks: list[SessionsEndedHook] = []


def on_sessions_ended(hook: SessionsEndedHook) -> SessionsEndedHook:
    """Register `hook` (once; usable as a decorator)."""
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


async def sessions_ended(
    sessions: Sequence[uuid.UUID] = (),
    *,
    accounts: Sequence[int] = (),
    kept: uuid.UUID | None = None,
) -> None:
    """Tell every hook, inside the caller's transaction (a hook's writes commit with it)."""
    if not sessions and not accounts:
        return
    ended = EndedSessions(tuple(sessions), tuple(accounts), kept)
    for hook in _hooks:
        await hook(ended)
