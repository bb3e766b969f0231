"""``python -m reviewpipe``."""

from reviewpipe.cli import main

main()
