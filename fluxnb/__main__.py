"""``python -m fluxnb`` is the ``fluxnb`` command."""

import sys

from .cli import main

sys.exit(main())
