"""``python -m alamos.cli``: the same as the ``alamos`` command."""

from alamos.cli import main

main()
