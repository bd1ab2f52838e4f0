"""The public API: ``__all__`` of ``actors`` and ``transport``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import pytest

import actors
import transport

PACKAGES = [actors, transport]
PROJECT = ("actors", "transport")


def _is_project_api(obj: object) -> bool:
    """A class or function that comes from this project (not typing, not stdlib)."""
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return False
    return getattr(obj, "__module__", "").split(".")[0] in PROJECT


def _public_modules(package: types.ModuleType) -> list[types.ModuleType]:
    return [importlib.import_module(f"{package.__name__}.{info.name}")
            for info in pkgutil.iter_modules(package.__path__)
            if not info.name.startswith("_")]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_all_is_sorted_without_duplicates(package):
    """The package's __all__ is sorted and names each export once."""
    assert list(package.__all__) == sorted(package.__all__)
    assert len(set(package.__all__)) == len(package.__all__)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_name_in_all_resolves(package):
    """Every name listed in the package's __all__ is an attribute of the package."""
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert missing == []


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_reexported_api_is_in_all(package):
    """Every public class or function the package namespace re-exports is listed in __all__."""
    exported = {name for name, obj in vars(package).items()
                if not name.startswith("_") and _is_project_api(obj)}
    assert sorted(exported - set(package.__all__)) == []


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_reexports_of_public_modules_are_in_all(package):
    """Each public class or function of a public submodule that the package re-exports is in __all__."""
    unlisted = []
    for module in _public_modules(package):
        for name, obj in vars(module).items():
            if name.startswith("_") or not _is_project_api(obj):
                continue
            if getattr(package, name, None) is obj and name not in package.__all__:
                unlisted.append(f"{module.__name__}.{name}")
    assert unlisted == []


def test_actors_all_names_public_api_of_its_modules():
    """Every name in a submodule's __all__ that actors re-exports is listed in actors.__all__."""
    for module in _public_modules(actors):
        for name in getattr(module, "__all__", ()):
            if getattr(actors, name, None) is getattr(module, name):
                assert name in actors.__all__, f"{module.__name__}.{name}"


def test_actors_public_classes_claim_the_actors_module():
    """Every class in actors.__all__ has __module__ == "actors", so it reprs and pickles by its public path."""
    wrong = {name: obj.__module__ for name in actors.__all__
             if inspect.isclass(obj := getattr(actors, name)) and obj.__module__ != "actors"}
    assert wrong == {}
