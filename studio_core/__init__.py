"""Cloud AI Art Studio's core: generation, storage and hardware logic with no Qt.

Everything here is usable from a plain script::

    import asyncio
    from studio_core.app_core import StudioCore
    from studio_core.paths import AppPaths
"""

from __future__ import annotations

__version__ = "0.1.0"
