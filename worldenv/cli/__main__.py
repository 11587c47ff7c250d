"""``python -m worldenv.cli``: the ``worldenv`` command."""

from worldenv.cli import main

raise SystemExit(main())
