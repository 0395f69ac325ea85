"""What reachdiff posts or prints, rendered from a diff: the sticky comment, check output,
line comments, the terminal review, Markdown escaping and the jinja2 environment. Pure."""
