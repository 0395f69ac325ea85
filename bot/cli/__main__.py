"""``python -m bot.cli``: the same as the ``reachdiff`` command."""

from bot.cli import main

raise SystemExit(main())
