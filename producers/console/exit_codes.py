"""The command line's exit statuses, apart from the failures that choose them so that
parsing the arguments needs neither.

1 when the work failed and may succeed later as it is (a dependency down or refusing);
2 when the command or the setup must change first (arguments, settings, files, a database
missing or never initialised); 130 on Ctrl-C.
"""

from __future__ import annotations

from typing import Final

FAILED: Final = 1
SETUP: Final = 2
INTERRUPTED: Final = 130
