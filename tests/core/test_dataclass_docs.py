"""The classes built before the window's first paint carry their own docstring.

Without one, ``@dataclass`` (Python 3.12) writes ``__doc__`` from ``inspect.signature``
at import, ~0.1 ms a class on the start-up path; a written line documents the class too.
"""

from __future__ import annotations

import dataclasses
import importlib

import pytest

START_UP_MODULES = ("studio_core.models", "studio_core.changes", "studio_core.inputs", "studio_core.jobs")


@pytest.mark.parametrize("name", START_UP_MODULES)
def test_every_dataclass_has_a_written_docstring(name):
    module = importlib.import_module(name)
    classes = [c for c in vars(module).values()
               if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == name]
    assert classes
    undocumented = [c.__name__ for c in classes
                    if "__doc__" not in vars(c) or not c.__doc__ or c.__doc__.startswith(c.__name__ + "(")]
    assert not undocumented, f"{name}: add a docstring to {undocumented}"
