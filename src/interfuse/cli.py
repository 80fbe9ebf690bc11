"""The ``interfuse`` command: ``interfuse demo`` and ``interfuse bench``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="interfuse", description="Fusion and interdependence operators for PyTorch."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "demo", help="train one model per fusion strategy on bundled data", add_help=False
    )
    sub.add_parser("bench", help="benchmark every fusion and structured matrix", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        from interfuse.demo import main as demo_main

        return demo_main(rest)
    from interfuse.bench import main as bench_main

    return bench_main(rest)


if __name__ == "__main__":
    sys.exit(main())
