"""``python -m chatops_app.cli``: the same as ``chatops``."""

from chatops_app.cli import main

main()
