"""``python -m interfuse.bench``: the same as ``interfuse bench``."""

import sys

from interfuse.bench import main

sys.exit(main(sys.argv[1:]))
