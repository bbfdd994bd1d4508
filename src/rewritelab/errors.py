"""Error types shared by every stage.

A `UserError` is bad input the user can fix (a typo in a config, an impossible request, a missing file).
The CLI turns it into one line on stderr and exit status 2; anything else is a bug (exit 1).
"""


class UserError(Exception):
    """Bad input: the message names the field or file and says how to fix it."""
