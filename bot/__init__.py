"""reachdiff's I/O shell around the pure engine in ``analysis``, one layer per package.

Dependencies point downwards only (``docs/architecture.md``; enforced by import-linter):

- ``bot.cli``: the ``reachdiff`` command line;
- ``bot.app``: the webhook server, job queue and the flows that perform a review on GitHub;
- ``bot.plan``: what one review writes (check, sticky comment, line comments), no I/O;
- ``bot.render``: what is posted or printed (Markdown, check output, JSON), from a diff;
- ``bot.review``: the decisions of one review (settings, approvals, verdict), no I/O;
- ``bot.inputs``: a repository's files to analysed environments (trees, git objects,
  kustomize, helm, the sandbox);
- ``bot.github``: the GitHub client, App authentication and REST calls (knows no analysis).
"""
