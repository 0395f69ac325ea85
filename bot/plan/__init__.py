"""What one review writes, decided before anything is written: pure, no I/O.

``plan_review`` turns one assessed analysis (the diff, the review context with the
approvals found, and the facts the flow gathered) into a ``ReviewOutcome``: the check run's
conclusion and output (title, summary, annotations), the sticky comment's body, the line
comments and the ``external_id`` recording the gated delta shown. ``bot.plan.failures``
plans the reviews that stop early (settings, trees or analysis that cannot be read).
The flows of ``bot.app`` gather the facts and perform an outcome as a list of writes.

This layer sits above ``bot.render`` (it composes rendered text) and ``bot.review`` (the
rules it applies), below ``bot.app``.
"""
