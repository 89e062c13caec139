"""The API reference is generated from the docstrings: every public name is on the API
page, and numpydoc's validation passes on each of them and their public methods."""

import importlib
import inspect
import re
from pathlib import Path

import pytest

validate = pytest.importorskip("numpydoc.validate").validate

API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"

# Enforced numpydoc checks: a docstring with a summary line, every parameter documented
# and none that does not exist, descriptions ending in a period; an example on every
# public function and class (methods inherit their class's).
CHECKS = {"GL08", "SS01", "PR01", "PR02", "PR10"}
TOP_LEVEL_CHECKS = CHECKS | {"EX01"}


def _api_page_names():
    """``module.name`` for every entry of the autosummary blocks of docs/api.md."""
    names, module = [], None
    for line in API_PAGE.read_text(encoding="utf-8").splitlines():
        found = re.match(r"\.\. currentmodule:: (\S+)", line)
        if found:
            module = found.group(1)
            continue
        found = re.match(r" {3}([A-Za-z_][\w.]*)$", line)
        if found and module is not None:
            names.append(f"{module}.{found.group(1)}")
    return names


def _resolve(name):
    parts = name.split(".")
    for stop in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:stop]))
            break
        except ImportError:
            continue
    for part in parts[stop:]:
        obj = getattr(obj, part)
    return obj


def _has_torch():
    try:
        importlib.import_module("skorch")
        importlib.import_module("torch")
    except ImportError:
        return False
    return True


def _documented():
    """(name, is a top-level public name) for every name and public method to check."""
    out = []
    for name in _api_page_names():
        if name.startswith("skrob.torch.") and not _has_torch():
            continue
        out.append((name, True))
        obj = _resolve(name)
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if inspect.isfunction(value) or isinstance(value, classmethod | staticmethod):
                    out.append((f"{name}.{attr}", False))
    return out


def test_every_public_name_is_on_the_api_page():
    listed = set(_api_page_names())
    modules = ["skrob", "skrob.datasets", "skrob.plotting"]
    if _has_torch():
        modules.append("skrob.torch")
    missing = []
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            if name.startswith("__"):
                continue
            obj = getattr(module, name)
            home = f"{module_name}.{name}"
            # a name re-exported from skrob may be listed under its own module
            if home not in listed and not any(n.endswith(f".{name}") for n in listed):
                if inspect.ismodule(obj):
                    continue
                missing.append(home)
    assert not missing, f"public names missing from docs/api.md: {missing}"


@pytest.mark.parametrize("name, top_level", _documented(), ids=lambda v: str(v))
def test_numpydoc_validation(name, top_level):
    checks = TOP_LEVEL_CHECKS if top_level else CHECKS
    errors = [f"{code}: {message}" for code, message in validate(name)["errors"] if code in checks]
    assert not errors, f"{name}:\n" + "\n".join(errors)
