"""The JSON of a diffusers or transformers pipeline folder checked before those libraries read it.

diffusers and transformers parse `model_index.json`, each part's `config.json`, the scheduler's config and the
tokenizer's files without bounds (a file nested 100,000 deep is a RecursionError), accept what they cannot use
(a scheduler's `num_train_timesteps` of 1e9 allocates gigabytes; `norm_eps: "x"` fails only in the first forward
pass) and answer a missing part with whatever error the hub client raises. Here every JSON file of a part is
read with the project's bounded reader and must be an object, a scheduler's fields are checked like our own
models' schedules, and a diffusers network's fields are checked against the types its constructor declares.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from pathlib import Path

from diffclass.errors import DiffclassError
from diffclass.files import read_json
from diffclass.hub import scheduler_problem

MAX_JSON_FILES = 64  # a part holds a handful (config, tokenizer files); more is not a pipeline part


def check_pipeline_part(cls, source: Path, subfolder: str, what: str) -> None:
    """Refuse, in one line, a local part that is missing or whose JSON a library would choke on or misuse."""
    folder = source / subfolder
    if not folder.is_dir():
        raise DiffclassError(f"{source} has no {subfolder}/ (the {what})")
    configs = check_json_files(folder)
    if subfolder:
        check_json_files(source)  # model_index.json beside the parts
    if _is_scheduler(cls):
        config = configs.get("scheduler_config.json")
        problem = scheduler_problem(config, known=scheduler_fields()) if config is not None else None
        if problem:
            raise DiffclassError(f"{folder}/scheduler_config.json: {problem}")
    elif hasattr(cls, "load_config") and "config.json" in configs:  # a diffusers network
        problem = config_type_problem(cls, configs["config.json"])
        if problem:
            raise DiffclassError(f"{folder}/config.json: {problem}")


def check_json_files(folder: Path) -> dict[str, dict]:
    """Every `*.json` in `folder`, parsed with bounds; each must be a JSON object."""
    paths = sorted(folder.glob("*.json"))
    if len(paths) > MAX_JSON_FILES:
        raise DiffclassError(f"{folder}: {len(paths)} JSON files is more than a pipeline part holds")
    parsed = {}
    for path in paths:
        value = read_json(path, "pipeline config")
        if not isinstance(value, dict):
            raise DiffclassError(f"{path}: expected a JSON object, got {type(value).__name__}")
        parsed[path.name] = value
    return parsed


def _is_scheduler(cls) -> bool:
    from diffusers import SchedulerMixin

    return isinstance(cls, type) and issubclass(cls, SchedulerMixin)


@functools.cache
def scheduler_fields() -> frozenset[str]:
    """Every field some diffusers scheduler takes: a pipeline's scheduler config may carry its own scheduler's
    fields (SD 1.5's PNDM ones, SD3's flow-matching shift), which ours ignores; a field none takes is a typo."""
    import diffusers
    from diffusers import SchedulerMixin

    fields = set()
    for name in dir(diffusers):
        if not name.endswith("Scheduler") or "Flax" in name:
            continue
        try:
            cls = getattr(diffusers, name)
        except (ImportError, AttributeError, RuntimeError):  # an optional backend it lacks
            continue
        if isinstance(cls, type) and issubclass(cls, SchedulerMixin):
            fields |= set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    return frozenset(fields)


def config_type_problem(cls, config: dict) -> str | None:
    """The first field whose value does not have the type the network's constructor declares for it
    (`norm_eps: "x"`, `layers_per_block: 1.5`); fields it does not declare are left to diffusers, which ignores
    them."""
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001  (an annotation this Python cannot resolve: nothing to check against)
        return None
    for key, value in config.items():
        if key.startswith("_") or key not in hints:
            continue
        if not _fits(value, hints[key]):
            return f"{key} = {value!r} must be {_describe(hints[key])}"
    return None


def _fits(value, hint) -> bool:
    """Whether a JSON value fits a type hint; hints this reader does not know accept anything."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list) or hint in (tuple, list):
        if not isinstance(value, list):
            return False
        inner = [a for a in args if a is not Ellipsis]
        return len(inner) != 1 or all(_fits(v, inner[0]) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return True


def _describe(hint) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin in (tuple, list) or hint in (tuple, list):
        return "a list"
    return names.get(hint, getattr(hint, "__name__", str(hint)))
