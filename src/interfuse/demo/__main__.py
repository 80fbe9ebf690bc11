"""``python -m interfuse.demo``."""

import sys

from interfuse.demo.run import main

sys.exit(main())
