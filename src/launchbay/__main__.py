"""``python -m launchbay`` is the CLI."""

import sys

from .cli import main

sys.exit(main())
