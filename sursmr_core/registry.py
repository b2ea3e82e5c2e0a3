"""One small generic registry, used once per kind of thing.

Codecs, predictor models and backbones, IQA metrics and machines each own one
:class:`Registry`. Entries register where they are defined (a decorator or a
``register`` call at module level), the registry is the only list, and CLI,
tests and benchmarks iterate over it.

The one discovery rule: a registry made with ``package="a.b"`` imports every
public module (name not starting with ``_``) of that package on its first
lookup, and looks again for modules it has not imported yet whenever a name is
missing or the names are listed. Adding a file that registers is therefore
enough; nothing else needs to import it.

Tests use :meth:`Registry.override`, :meth:`Registry.only` and
:meth:`Registry.scope` instead of touching the registry's fields.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Generic, TypeVar, overload

from sursmr_core.errors import InputError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → entry mapping with helpful errors.

    ``kind`` names the things registered ("codec", "model"...) in messages.
    ``package`` (optional) is a dotted package whose public modules are
    imported on first lookup (see the module docstring), so adding a file is
    enough to register.
    """

    def __init__(self, kind: str, package: str | None = None) -> None:
        self.kind = kind
        self._package = package
        self._entries: dict[str, T] = {}
        # modules of ``package`` already imported (or being imported) by discovery
        self._scanned: set[str] = set()

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
        """Import the package's public modules not imported by an earlier scan."""
        if self._package is None:
            return
        package = importlib.import_module(self._package)
        for info in pkgutil.iter_modules(package.__path__):
            module = f"{self._package}.{info.name}"
            if info.name.startswith("_") or module in self._scanned:
                continue
            # marked first: a module that looks itself up while importing does not import itself again
            self._scanned.add(module)
            importlib.import_module(module)

    def get(self, name: str) -> T:
        """Return the entry called ``name`` or raise :class:`UnknownNameError`."""
        if name not in self._entries:
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
        if name not in self._entries:
            self._discover()
        return name in self._entries

    def __len__(self) -> int:
        self._discover()
        return len(self._entries)

    @contextmanager
    def scope(self) -> Iterator[Registry[T]]:
        """Undo, on leaving the block, every registration and discovery made inside it.

        For tests that add a module to the registry's package (a toy codec in
        a temporary folder appended to ``package.__path__``) and must leave the
        real registry as it was.
        """
        # discover first: entries found inside the block would be dropped on exit while their
        # modules stay imported, so they could never register again
        self._discover()
        with self._restoring():
            yield self

    @contextmanager
    def _restoring(self) -> Iterator[None]:
        entries, scanned, package = dict(self._entries), set(self._scanned), self._package
        try:
            yield
        finally:
            self._entries, self._scanned, self._package = entries, scanned, package

    @contextmanager
    def override(self, name: str, entry: T) -> Iterator[T]:
        """Within the block, ``name`` is ``entry`` (added, or replacing the registered one); restored after.

        >>> with CODECS.override("jpeg", FakeJpeg):
        ...     run_something_that_looks_up("jpeg")
        """
        with self.scope():
            self._entries[name] = entry
            yield entry

    @contextmanager
    def only(self, entries: Mapping[str, T]) -> Iterator[Registry[T]]:
        """Within the block the registry holds exactly ``entries`` (no discovery); restored after."""
        with self._restoring():
            self._entries = dict(entries)
            self._package = None
            yield self
