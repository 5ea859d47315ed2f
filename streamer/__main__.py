"""`python -m streamer` runs the command line."""

from streamer.cli import main

raise SystemExit(main())
