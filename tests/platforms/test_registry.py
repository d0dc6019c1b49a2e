"""The platform registry: a connection kind is all a new platform adds for accounts to reach it.

A fake kind stands in for a second platform: its connections live in a dict instead of a
table, which is all the resolver needs (it hands each kind the session it opened)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import pytest

from adflywheel.core.settings import Settings
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.platforms.meta.connection import MetaConnectionKind
from adflywheel.platforms.registry import CONNECTION_KINDS, connected_platforms

SESSION = object()


class FakeFactory:
    """A session factory whose sessions are one marker object (no database)."""

    def __call__(self) -> nullcontext[object]:
        return nullcontext(SESSION)


class Named:
    """A platform that only says whose it is."""

    def __init__(self, kind: str, connection: str) -> None:
        self.name, self.connection = kind, connection


class FakeKind:
    def __init__(self, name: str, connections: dict[int, str]) -> None:
        self.name, self.connections, self.built = name, connections, 0

    def connection(self, session: Any, account_id: int) -> str | None:
        assert session is SESSION
        return self.connections.get(account_id)

    def build(self, settings: Settings, connection: str) -> AdPlatform:
        self.built += 1
        return Named(self.name, connection)  # type: ignore[return-value]


def test_meta_is_the_registered_connection_kind() -> None:
    assert [type(k) for k in CONNECTION_KINDS] == [MetaConnectionKind]
    assert [k.name for k in CONNECTION_KINDS] == ["meta"]  # what connecting sets as platform


def test_every_kind_is_asked_and_the_others_fall_back() -> None:
    first, second = FakeKind("tiktok", {1: "t-1", 3: "t-3"}), FakeKind("snap", {2: "s-2", 3: "s"})
    resolve = connected_platforms(
        Settings(),
        FakeFactory(),
        kinds=(first, second),  # type: ignore[arg-type]
    )
    one, two, three = resolve(1), resolve(2), resolve(3)
    assert (one.name, two.name, three.name) == ("tiktok", "snap", "tiktok")  # first kind wins
    with pytest.raises(PlatformError, match="no connected ad platform"):
        resolve(4)

    fallback = Named("simulated", "-")
    other = connected_platforms(
        Settings(),
        FakeFactory(),  # type: ignore[arg-type]
        fallback=lambda _: fallback,  # type: ignore[arg-type,return-value]
        kinds=(first,),
    )
    assert other(4) is fallback and other(1).name == "tiktok"


def test_a_platform_is_kept_while_its_connection_is_unchanged() -> None:
    kind = FakeKind("tiktok", {1: "t-1"})
    resolve = connected_platforms(
        Settings(),
        FakeFactory(),
        kinds=(kind,),  # type: ignore[arg-type]
    )
    platform = resolve(1)
    assert resolve(1) is platform and kind.built == 1
    kind.connections[1] = "t-1b"  # reconnected to another account of that platform
    rebuilt = resolve(1)
    assert rebuilt is not platform and rebuilt.connection == "t-1b"  # type: ignore[attr-defined]
    assert kind.built == 2
