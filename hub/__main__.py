"""``python -m hub``: the same commands as the ``otkuda`` script."""

from hub.cli import main

main(prog_name="otkuda")
