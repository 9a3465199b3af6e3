"""``python -m mailsink`` runs the ``mailsink`` command."""

from .cli import main

raise SystemExit(main())
