"""Security fixtures: the AppTest database (an admin and an analyst) and helpers that read everything a page drew."""

from __future__ import annotations

from collections.abc import Iterator

from tests.app.conftest import _navigation_mode, app_db  # noqa: F401  (fixtures: autouse nav mode, module db)


def element_protos(at) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """Every element's protobuf (main area and sidebar, nested blocks included)."""

    def walk(node):  # type: ignore[no-untyped-def]
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for child in children.values():
                yield from walk(child)
        proto = getattr(node, "proto", None)
        if proto is not None and not isinstance(children, dict):
            yield proto

    yield from walk(at._tree)


def page_dump(at) -> str:  # type: ignore[no-untyped-def]
    """All a page sent to the browser, as text (protobuf text format; dataframes as their Arrow bytes)."""
    return "\n".join(str(p) for p in element_protos(at))
