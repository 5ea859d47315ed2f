"""``python -m bench.<section>``: run one benchmark section alone (the same ``section`` ``python -m bench`` runs)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any


def section_main(prog: str, description: str, quick_help: str,
                 section: Callable[[argparse.Namespace, Any], dict[str, Any]], argv: list[str] | None) -> int:
    """Parse ``--quick``/``--json``, run ``section(args, console)``, write the JSON; exit status 0."""
    from rich.console import Console

    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = p.parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=200)
    results = section(args, console)
    if args.json:
        import orjson

        with open(args.json, "wb") as fh:
            fh.write(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0
