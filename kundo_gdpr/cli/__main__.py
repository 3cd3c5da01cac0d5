"""`python -m kundo_gdpr.cli`: the same as the kundo-gdpr command."""

from kundo_gdpr.cli import main

raise SystemExit(main())
