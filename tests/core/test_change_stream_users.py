"""The front end and the scripts hear the core through one change stream (issue 12).

Widgets connect to the CoreBridge's signals (studio_gui/bridge.py is the window's only
subscriber to ``core.changes``), so Qt disconnects them when they die; scripts and
benchmarks subscribe to ``core.changes``. The core's own lists (the job queue's
subscribers, the index's and the managed server's listeners) feed that stream and are
the core's business: nothing outside ``studio_core`` appends to them again.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# pattern -> why it is not wanted outside the core
OLD_WAYS = {
    r"\bjobs\.subscribe\(": "the queue's own subscriber list: subscribe to core.changes (or the bridge)",
    r"\bcore\.image_saved\b": "the removed core.image_saved list: ImageSaved on core.changes",
    r"\b(state|log|started)_listeners\b": "the managed server's lists: ServerStateChanged/ServerOutput",
    r"\badd_listener\(": "the pool's list: PoolStateChanged on core.changes",
}
# A gallery model over a bare index (tests and tools without a core) has no bridge; it
# appends to the index's lists itself and removes itself in detach().
INDEX_LISTS = r"\b(record_added|records_removed|records_changed)\b"
INDEX_LIST_USERS = {"studio_gui/gallery/model.py"}


def sources(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py"))


def hits(pattern: str, files: list[Path], allowed: set[str] = frozenset(), root: Path = ROOT) -> list[str]:
    """Lines matching ``pattern`` outside comments, as "path:line: text"."""
    found = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        if rel in allowed:
            continue
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if re.search(pattern, line.split("#", 1)[0]):
                found.append(f"{rel}:{n}: {line.strip()}")
    return found


def test_front_end_and_scripts_use_no_old_listener_list():
    files = sources("studio_gui", "tools", "benchmarks", "packaging")
    assert files
    problems = [f"{hit}  ({why})" for pattern, why in OLD_WAYS.items() for hit in hits(pattern, files)]
    problems += [f"{hit}  (an index list outside the bare-index model)"
                 for hit in hits(INDEX_LISTS, files, INDEX_LIST_USERS)]
    assert problems == []


def test_only_the_bridge_subscribes_widgets_to_the_bus():
    """A widget's bus callback outlives the widget unless it closes it itself; a signal
    connection to a bound method does not. So in studio_gui only the bridge subscribes."""
    found = hits(r"changes\.subscribe\(", sources("studio_gui"), {"studio_gui/bridge.py"})
    assert found == []


def test_the_rule_catches_an_old_way(tmp_path):
    bad = tmp_path / "w.py"
    bad.write_text("core.jobs.subscribe(cb)\nself.core.image_saved.append(cb)\n"
                   "server.state_listeners.append(cb)  # a comment: jobs.subscribe(\n", "utf-8")
    found = [h for pattern in OLD_WAYS for h in hits(pattern, [bad], root=tmp_path)]
    assert [h.split(":")[1] for h in found] == ["1", "2", "3"]


def unexplained_guards(files: list[Path], root: Path = ROOT) -> list[str]:
    """``shiboken6.isValid`` guards with no comment on their line or the two lines above."""
    found = []
    for path in files:
        lines = path.read_text("utf-8").splitlines()
        for n, line in enumerate(lines):
            if "isValid(" in line and "shiboken6" in line and not line.lstrip().startswith("#"):
                near = lines[max(0, n - 2):n + 1]
                if not any("#" in x for x in near):
                    found.append(f"{path.relative_to(root).as_posix()}:{n + 1}: {line.strip()}")
    return found


def test_every_remaining_isvalid_guard_says_why():
    """The bridge made guards in signal slots unnecessary (Qt drops a dead widget's
    connections); the ones left protect code reached after an await or from a task or
    plain callback that outlives the widget, and say so."""
    assert unexplained_guards(sources("studio_gui")) == []


def test_the_guard_rule_catches_a_silent_guard(tmp_path):
    f = tmp_path / "w.py"
    f.write_text("x = 1\n\n\nif not shiboken6.isValid(self):\n    return\n"
                 "if shiboken6.isValid(self):  # after the await the page may be gone\n    pass\n", "utf-8")
    assert unexplained_guards([f], root=tmp_path) == ["w.py:4: if not shiboken6.isValid(self):"]
