"""``python -m polynn.cli``: the same as the ``polynn`` command."""

import sys

from polynn.cli import main

sys.exit(main())
