"""Double-click entry point: ``python main.py`` (add ``--data-dir DIR`` for a portable folder)."""

import sys

from studio_gui.app import main

if __name__ == "__main__":
    sys.exit(main())
