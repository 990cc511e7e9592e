"""``python -m desktop [PATH]`` opens the viewer (the demo study when no path is given)."""

import sys

from desktop.cli import main

sys.exit(main(["view", *sys.argv[1:]]))
