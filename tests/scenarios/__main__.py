"""``python -m tests.scenarios [--update] [NAME ...]``: run the golden scenarios.

Without ``--update`` it prints a readable diff for every output that differs and exits 1;
with it, it rewrites the expected files (and refreshes mirrored trees) and lists what
changed. The bot runs in worker processes, hence the ``__main__`` guard.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from . import golden
from .drive import run_bot, run_cli
from .spec import Scenario, discover


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.scenarios")
    parser.add_argument("--update", action="store_true", help="rewrite the expected files")
    parser.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    args = parser.parse_args(argv)
    scenarios = [s for s in discover() if not args.names or s.name in args.names]
    unknown = set(args.names) - {s.name for s in scenarios}
    if unknown:
        parser.error(f"no such scenario: {', '.join(sorted(unknown))}")
    failed = 0
    for scenario in scenarios:
        failed += not _one(scenario, update=args.update)
    return 1 if failed else 0


def _one(scenario: Scenario, *, update: bool) -> bool:
    missing = golden.missing_renderer(scenario)
    if missing:
        # Rewriting it would record the "could not be analysed" failure as expected.
        print(f"{scenario.name}: SKIPPED, {missing} (its expected files are left as they are)")
        return True
    if update and golden.refresh_mirror(scenario):
        print(f"{scenario.name}: base/ and head/ copied again from {scenario.mirror}")
    actual = golden.render(asyncio.run(run_bot(scenario)), run_cli(scenario))
    if update:
        changed = golden.write(scenario, actual)
        print(f"{scenario.name}: {', '.join(changed) if changed else 'unchanged'}")
        return True
    problems = golden.differences(scenario, actual)
    print(f"{scenario.name}: {'differs' if problems else 'ok'}")
    for problem in problems:
        print(problem)
    return not problems


if __name__ == "__main__":
    sys.exit(main())
