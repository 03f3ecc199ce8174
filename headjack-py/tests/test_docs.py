"""Every public class and method carries a docstring; the package is typed."""

from __future__ import annotations

import inspect
import pathlib

import headjack


def test_every_public_name_is_documented() -> None:
    missing: list[str] = []
    for name in headjack.__all__:
        obj = getattr(headjack, name)
        if name == "__version__":
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if not (getattr(member, "__doc__", None) or "").strip():
                    missing.append(f"{name}.{attr}")
    assert missing == []


def test_package_ships_stubs_and_marker() -> None:
    pkg = pathlib.Path(headjack.__file__).parent
    assert (pkg / "py.typed").exists()
    assert (pkg / "_headjack.pyi").exists()
    assert headjack.__version__
