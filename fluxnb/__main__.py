"""``python -m fluxnb`` is the ``fluxnb`` command."""

import sys

from .cli import main

if __name__ == "__main__":  # Dask's worker processes re-import __main__: run only once
    sys.exit(main())
