"""One signal hub per core, so a settings page and the selector in the main window stay in step.

Keys never go through ``core.settings``, so a saved key would otherwise go unnoticed by
the selector until the next manual refresh; a passed "Test connection" would leave a
stale red dot. Pages emit here; the selector listens.
"""

from __future__ import annotations

import weakref

from PySide6.QtCore import QObject, Signal


class ServiceEvents(QObject):
    # service id, ProviderStatus
    status_checked = Signal(str, object)
    # service id: key or provider settings were saved; its status is worth checking again
    config_saved = Signal(str)
    # service id, ProviderStatus: the selector's latest view of a service, from any check
    status_updated = Signal(str, object)

    def __init__(self):
        super().__init__()
        self.last: dict[str, object] = {}


_hubs: weakref.WeakKeyDictionary[object, ServiceEvents] = weakref.WeakKeyDictionary()


def events_for(core: object) -> ServiceEvents:
    hub = _hubs.get(core)
    if hub is None:
        hub = _hubs[core] = ServiceEvents()
    return hub
