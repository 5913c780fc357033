"""`python -m cli`, the same as `jobstream`."""

from cli import main

main()
