"""The one exception type users see: the CLI turns it into a single line and exit code 2."""


class DiffclassError(Exception):
    """A problem with the user's input (file, name, option, model folder), not a bug in diffclass."""
