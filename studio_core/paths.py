"""Where the studio keeps its files.

Everything comes from platformdirs unless ``--data-dir`` or ``STUDIO_HOME`` asks for a
single portable folder (used by tests and USB-stick installs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "CloudAIArtStudio"
APP_AUTHOR = "CloudAIArtStudio"
HOME_ENV = "STUDIO_HOME"


@dataclass(frozen=True, slots=True)
class AppPaths:
    data: Path
    config: Path
    cache: Path
    logs: Path

    @classmethod
    def default(cls) -> AppPaths:
        home = os.environ.get(HOME_ENV)
        if home:
            return cls.portable(Path(home))
        # Imported here: a portable start (--data-dir, STUDIO_HOME) never needs it, and its
        # import (~4–7 ms) would sit before the window's first paint.
        import platformdirs

        dirs = platformdirs.PlatformDirs(APP_NAME, APP_AUTHOR)
        return cls(
            data=dirs.user_data_path,
            config=dirs.user_config_path,
            cache=dirs.user_cache_path,
            logs=dirs.user_log_path,
        )

    @classmethod
    def portable(cls, root: Path) -> AppPaths:
        root = Path(root).expanduser().resolve()
        return cls(data=root / "data", config=root / "config", cache=root / "cache", logs=root / "logs")

    @property
    def images(self) -> Path:
        return self.data / "images"

    @property
    def index_file(self) -> Path:
        return self.data / "index.sqlite3"

    @property
    def settings_file(self) -> Path:
        return self.config / "settings.json"

    @property
    def secrets_file(self) -> Path:
        return self.data / "secrets.json"

    @property
    def thumbnails(self) -> Path:
        return self.cache / "thumbs"

    @property
    def log_file(self) -> Path:
        return self.logs / "studio.log"

    def ensure(self) -> None:
        for p in (self.data, self.config, self.cache, self.logs, self.images):
            p.mkdir(parents=True, exist_ok=True)
