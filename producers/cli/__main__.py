"""``python -m producers.cli``: the ``tickfleet`` command."""

import sys

from producers.cli import main

sys.exit(main())
