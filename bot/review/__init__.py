"""The decisions of one review, pure: per-repository settings, which approvals count, the
verdict, and which lines accept review comments. No I/O."""
