"""Golden scenarios: pull requests a reviewer can read, with what reachdiff posts on them.

Each folder here is one pull request (see README.md): ``base/`` and ``head/`` trees, an
optional ``scenario.yml`` saying who is who and what happens on the pull request, and the
expected outputs the real bot (driven against the fake GitHub) and the real CLI produce.
``python -m tests.scenarios --update`` regenerates them; ``test_scenarios.py`` fails on any
difference.
"""
