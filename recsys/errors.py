"""The one exception type that means "the user asked for something we can't do"."""


class UserError(Exception):
    """Bad input or a missing prerequisite; the CLI prints it on one line and exits 2."""
