"""``python -m devices.agent measure SPEC.json`` (the zipapp has its own ``__main__``)."""

import sys

from .cli import main

sys.exit(main())
