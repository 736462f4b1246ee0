"""`python -m isengard.cli`: how `isengard up` starts its child processes."""

from isengard.cli.main import main

raise SystemExit(main())
