"""The one exception type users see: the CLI turns it into a single line and exit code 2."""


class DiffclassError(Exception):
    """A problem with the user's input (file, name, option, model folder), not a bug in diffclass."""


def check_range(option: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    """Refuse a number outside [low, high] (or (low, high]) in one line; NaN is outside every range."""
    inside = (low < value if low_open else low <= value) and value <= high  # False for NaN
    if not inside:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise DiffclassError(f"{option} must be in {interval}, got {value}")


def check_device(device) -> None:
    """A device this torch can use, or one line saying why not (a CUDA device on a CPU build, a name torch does
    not know), before anything is loaded onto it."""
    import torch

    if not isinstance(device, (str, torch.device)):
        raise DiffclassError(f"device must be text such as cpu, cuda or cuda:1, got {type(device).__name__}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise DiffclassError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise DiffclassError(f"device {device} is not available: this torch ({torch.__version__}) sees no CUDA GPU")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise DiffclassError(f"device {device} is not available on this machine")


def check_type(name: str, value, *types: type, allow_none: bool = False) -> None:
    """Refuse an argument of the wrong type in one line (a bool is not an integer here)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        wanted = " or ".join(t.__name__ for t in types) + (" or None" if allow_none else "")
        raise DiffclassError(f"{name} must be {wanted}, got {type(value).__name__} {value!r:.40}")
