"""`python -m workers.cli` runs `dmr`."""

import sys

from . import main

sys.exit(main())
