"""The target kinds, registered by their own modules (as restic's backends and rclone's `fs.Register`):
a module declares its kind, its Turkish label, whether it needs a password, how its address reads and
how to open it. The factory, the Hedefler drop-down, settings validation and the help sheet read this
list, so a new kind is one new module plus one name in BUILTIN."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

# modules that register a kind when imported (lazily: requests/lxml only when a target is used)
BUILTIN = ("edefter_helper.targets.folder", "edefter_helper.targets.http", "edefter_helper.targets.izibiz",
           "edefter_helper.targets.s3")


@dataclass(frozen=True)
class TargetKind:
    kind: str  # as typed in Hedefler's Tür column
    label: str  # Turkish, for help and messages
    needs_password: bool  # from the OS keyring, for Firmalar's Kullanıcı Adı
    address_help: str  # Turkish: what goes into Adres
    open: Callable[..., object]  # (address, user, password, timeout) -> Target
    aliases: tuple[str, ...] = field(default=())


_KINDS: dict[str, TargetKind] = {}
_loaded = False


def register(spec: TargetKind) -> TargetKind:
    _KINDS[spec.kind] = spec
    return spec


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for name in BUILTIN:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a kind whose library is not installed stays unavailable
                continue
    _loaded = True


def kinds() -> list[TargetKind]:
    """In BUILTIN's order whatever imported first (the template's drop-down must not depend on it)."""
    _load()

    def order(spec: TargetKind):
        module = getattr(spec.open, "__module__", "")
        return (BUILTIN.index(module) if module in BUILTIN else len(BUILTIN), spec.kind)

    return sorted(_KINDS.values(), key=order)


def kind_names() -> tuple[str, ...]:
    return tuple(k.kind for k in kinds())


def get(kind: str) -> TargetKind | None:
    """The kind as typed (case-insensitive; aliases such as 'klasor' or 'folder' accepted)."""
    _load()
    typed = (kind or "").strip().lower()
    for spec in _KINDS.values():
        if typed == spec.kind or typed in spec.aliases:
            return spec
    return None
