"""``python -m oauthguard``: the ``oauthguard`` command."""

from oauthguard._cli import main

raise SystemExit(main())
