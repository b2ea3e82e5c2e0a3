"""One small generic registry, used once per kind of thing.

Codecs, predictor models, IQA metrics and machines each own one
:class:`Registry`. Entries register where they are defined (a decorator), the
registry is the only list, and CLI, tests and benchmarks iterate over it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

from sursmr_core.errors import InputError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → entry mapping with helpful errors.

    ``kind`` names the things registered ("codec", "model"...) in messages.
    ``package`` (optional) is a dotted package whose public modules are
    imported on first lookup, so adding a file is enough to register.
    """

    def __init__(self, kind: str, package: str | None = None) -> None:
        self.kind = kind
        self._package = package
        self._entries: dict[str, T] = {}
        self._discovered = package is None

    @overload
    def register(self, entry: T, *, name: str | None = None) -> T: ...

    @overload
    def register(self, entry: None = None, *, name: str | None = None) -> Callable[[T], T]: ...

    def register(self, entry: T | None = None, *, name: str | None = None) -> T | Callable[[T], T]:
        """Register ``entry`` under ``name`` (default: its ``name`` attribute or ``__name__``).

        Usable as ``@REGISTRY.register`` or ``@REGISTRY.register(name="x")``.
        """

        def add(item: T) -> T:
            key = name or getattr(item, "name", None) or getattr(item, "__name__", None)
            if not isinstance(key, str) or not key:
                raise InputError(f"cannot register {item!r} as a {self.kind}: it has no name")
            existing = self._entries.get(key)
            if existing is not None and existing is not item:
                raise InputError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = item
            return item

        if entry is None:
            return add
        return add(entry)

    def _discover(self) -> None:
        if self._discovered or self._package is None:
            return
        self._discovered = True
        package = importlib.import_module(self._package)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self._package}.{info.name}")

    def get(self, name: str) -> T:
        """Return the entry called ``name`` or raise :class:`UnknownNameError`."""
        self._discover()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._discover()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        for key in self.names():
            yield key, self._entries[key]

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._entries

    def __len__(self) -> int:
        self._discover()
        return len(self._entries)
