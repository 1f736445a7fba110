"""The one exception type users see: the CLI turns it into a single line and exit code 2."""


class DiffclassError(Exception):
    """A problem with the user's input (file, name, option, model folder), not a bug in diffclass."""


def check_range(option: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    """Refuse a number outside [low, high] (or (low, high]) in one line; NaN is outside every range."""
    inside = (low < value if low_open else low <= value) and value <= high  # False for NaN
    if not inside:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise DiffclassError(f"{option} must be in {interval}, got {value}")
