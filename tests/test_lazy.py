"""Package roots' public names: each resolves to its module's object, lazily."""

import importlib

import pytest

from mnas.lazy import lazy_exports

PACKAGE_ROOTS = ("mnas.model", "mnas.train", "mnas.latency", "mnas.scaling", "mnas.io")


@pytest.mark.parametrize("package", PACKAGE_ROOTS)
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    assert module.__all__ == sorted(module.__all__) and module.__all__
    for name in module.__all__:
        value = getattr(module, name)
        home = getattr(value, "__module__", None)
        if home is not None:  # classes and functions say where they live
            assert home.startswith(f"{package}."), (name, home)
    assert dir(module) == module.__all__


def test_unknown_names_and_caching():
    getattr_, dir_, names = lazy_exports(
        "mnas.io", {"format_table": ".tables", "missing": ".tables"}
    )
    assert names == ["format_table", "missing"] and dir_() == names
    from mnas.io.tables import format_table

    assert getattr_("format_table") is format_table
    with pytest.raises(AttributeError) as info:
        getattr_("nope")
    assert str(info.value) == "module 'mnas.io' has no attribute 'nope'"
    with pytest.raises(AttributeError):
        getattr_("missing")  # listed, but its module has no such name
