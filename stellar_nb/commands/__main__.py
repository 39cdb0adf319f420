"""``python -m stellar_nb.commands``: the ``stellar-nb`` command line."""

import sys

from stellar_nb.commands import main

__all__ = []

sys.exit(main())
