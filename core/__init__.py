"""CTLens headless engine: study I/O, pixel math, synthetic data and (later) models.

Nothing under ``core`` imports Qt; everything the desktop app does can be done from here
or from the ``ctlens`` command line.
"""

from __future__ import annotations

__version__ = "0.1.0"
