"""Entry point of the frozen bundle: the same ``ctlens`` command as the installed package."""

import multiprocessing
import sys

from desktop.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a no-op unless a library spawns worker processes (Windows, macOS)
    sys.exit(main())
