"""The service signals a settings page and the selector in the main window share.

Keys never go through ``core.settings``, so a saved key would otherwise go unnoticed by
the selector until the next manual refresh; a passed "Test connection" would leave a
stale red dot. Pages emit ``status_checked``/``config_saved`` on the core's bridge; the
selector listens and publishes its latest view (``status_updated``, ``last``).
"""

from __future__ import annotations

from studio_gui.bridge import CoreBridge, bridge_for

ServiceEvents = CoreBridge


def events_for(core: object) -> CoreBridge:
    """The core's bridge, which carries the service signals (no registry of its own)."""
    return bridge_for(core)
