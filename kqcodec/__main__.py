"""``python -m kqcodec``: the same as the ``kqcodec`` command."""

from .cli import run

run()
