"""``python -m flows COMMAND`` is ``amr-prune COMMAND`` (cli/): kept for the scripts and tests that spell it so.
An entry script, imported by no module; the layering test allows it, alone in flows/, to import cli."""
from cli import main

main()
