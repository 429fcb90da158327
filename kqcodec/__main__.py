"""``python -m kqcodec``: the same as the ``kqcodec`` command."""

import sys

from .cli import main

sys.exit(main())
