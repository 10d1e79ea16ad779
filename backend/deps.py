"""Dependencies that handlers name as parameters: settings, redis, outbox, storage, sms, actor,
principal (the resources come from `backend/resources.py`, opened in the app's lifespan)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter
from redis.asyncio import Redis

from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.accounts.schemas import DB_ID_MAX
from backend.config import Settings
from backend.errors import Unauthorized
from backend.http import actor_of
from backend.notify.sms import SmsSender
from backend.outbox import Outbox
from backend.storage import Storage


def provide_settings(request: Request[Any, Any, Any]) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def provide_redis(request: Request[Any, Any, Any]) -> Redis:
    return request.app.state.redis  # type: ignore[no-any-return]


def provide_outbox(request: Request[Any, Any, Any]) -> Outbox:
    """Jobs are asked for through the outbox, inside the service's transaction; nothing
    enqueues from a handler."""
    return Outbox(request.app.state.arq)


def provide_storage(request: Request[Any, Any, Any]) -> Storage:
    return request.app.state.storage  # type: ignore[no-any-return]


def provide_sms(request: Request[Any, Any, Any]) -> SmsSender:
    return request.app.state.sms  # type: ignore[no-any-return]


def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    return actor_of(request)


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise Unauthorized()
    return user


DEPENDENCIES = {
    "settings": Provide(provide_settings, sync_to_thread=False),
    "redis": Provide(provide_redis, sync_to_thread=False),
    "outbox": Provide(provide_outbox, sync_to_thread=False),
    "storage": Provide(provide_storage, sync_to_thread=False),
    "sms": Provide(provide_sms, sync_to_thread=False),
    "actor": Provide(provide_actor, sync_to_thread=False),
    "principal": Provide(provide_principal, sync_to_thread=False),
}


SettingsDep = NamedDependency[Settings]
RedisDep = NamedDependency[Redis]
OutboxDep = NamedDependency[Outbox]
StorageDep = NamedDependency[Storage]
SmsDep = NamedDependency[SmsSender]
ActorDep = NamedDependency[Actor]
PrincipalDep = NamedDependency[Principal]

# A row id as a query filter (`?class_id=`): inside the id column's range, else 400.
IdFilter = Annotated[int | None, QueryParameter(ge=1, le=DB_ID_MAX)]
