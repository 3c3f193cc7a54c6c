"""`python -m cli`: the `aia-engine` command without the console script."""

import sys

from cli.main import main

sys.exit(main())
