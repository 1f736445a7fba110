"""What latent-diffusion backbones share: loading diffusers components with clear errors, and VAE encoding."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from diffclass.errors import DiffclassError
from diffclass.hub import check_weights_fit, refuse_pickles
from diffclass.hub.pipelines import check_pipeline_part
from diffclass.hub.pruned import is_pruned_folder, load_pruned_model

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype not in DTYPES:
        raise DiffclassError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype != "float32" and not str(device).startswith("cuda"):
        raise DiffclassError(f"--dtype {dtype} needs a CUDA device; use float32 on {device}")
    return DTYPES[dtype]


def quiet_hub_libraries() -> None:
    """diffusers and transformers say only errors and draw no progress bars of their own."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


MAX_NETWORK_PARAMETERS = 30_000_000_000  # SD3.5-large's transformer holds 8B, T5-XXL 4.7B
MAX_DEPTH, MAX_WIDTH = 256, 1_000_000  # layers / blocks / heads per config entry; any other integer size


def _oversized_entry(config: dict, prefix: str = "") -> str | None:
    """The first integer (or list of integers) in a config past the bounds, as `key = value`."""
    for key, value in config.items():
        if isinstance(value, dict):
            found = _oversized_entry(value, f"{prefix}{key}.")
            if found:
                return found
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
        bound = MAX_DEPTH if any(w in str(key) for w in ("layers", "per_block", "blocks", "heads")) else MAX_WIDTH
        if any(v > bound for v in ints):
            return f"{prefix}{key} = {value!r} (bound {bound:,})"
    return None


def refuse_oversized(cls, folder: Path, what: str) -> torch.nn.Module | None:
    """Refuse a network whose config asks for more than any published model, before anything is allocated: every
    size in the config is bounded, then the network is built on the meta device (no memory) and counted. Returns
    that empty network, whose tensors the weights must match; a folder without a config is left to the loader,
    which names what is missing."""
    if not (folder / "config.json").is_file():
        return None
    try:
        if hasattr(cls, "load_config"):  # diffusers
            config = cls.load_config(folder)
        else:  # transformers, which checks its fields' types as it builds the config
            config = cls.config_class.from_pretrained(folder).to_dict()
    except Exception as exc:  # noqa: BLE001  (whatever the library raises on a config it refuses)
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [repr(exc)]
        raise DiffclassError(f"{folder}/config.json: {lines[-1] if len(lines) > 1 else lines[0]}") from None
    entry = _oversized_entry(config)
    if entry:
        raise DiffclassError(f"{folder}/config.json: the {what} is too large: {entry}")
    try:
        with torch.device("meta"):
            module = cls.from_config(config) if hasattr(cls, "load_config") else cls(cls.config_class(**config))
    except Exception as exc:  # a config diffusers or transformers cannot build from is refused the same way
        raise DiffclassError(f"{folder}/config.json: cannot build the {what}: {str(exc).splitlines()[0]}") from None
    count = sum(p.numel() for p in module.parameters())
    if count > MAX_NETWORK_PARAMETERS:
        raise DiffclassError(
            f"{folder}/config.json: the {what} would hold {count / 1e9:.1f}B parameters, over the "
            f"bound of {MAX_NETWORK_PARAMETERS / 1e9:.0f}B"
        )
    return module


def load_component(cls, source: str | Path, subfolder: str, what: str, torch_dtype: torch.dtype | None = None):
    """`cls.from_pretrained(source, subfolder=...)`, turning a missing or unreachable part into one clear line.
    Networks (those given a dtype) are read from safetensors only."""
    kwargs = {} if torch_dtype is None else dict(use_safetensors=True, torch_dtype=torch_dtype)
    quiet_hub_libraries()
    try:
        if is_pruned_folder(Path(source) / subfolder):  # a structurally pruned network (diffclass prune format)
            return load_pruned_model(cls, Path(source) / subfolder).to(torch_dtype or torch.float32)
        local = Path(source) / subfolder
        if Path(source).is_dir():  # a local folder: its JSON checked, a network's weights safetensors that fit
            check_pipeline_part(cls, Path(source), subfolder, what)
            if torch_dtype is not None:
                refuse_pickles(local)
                empty = refuse_oversized(cls, local, what)
                if empty is not None:
                    check_weights_fit(empty, local)
        return cls.from_pretrained(str(source), subfolder=subfolder, **kwargs)
    except (OSError, ValueError) as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        part = f" ({subfolder}/)" if subfolder else ""
        raise DiffclassError(f"cannot load the {what}{part} of {source}: {first.strip()}") from None


@torch.no_grad()
def vae_encode(vae, images: torch.Tensor, size: int, dtype: torch.dtype) -> torch.Tensor:
    """x0 = (mean of the VAE posterior - the VAE's shift factor, SD3's) x its scaling factor, at the model's
    resolution (RGB in [-1, 1])."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    device = next(vae.parameters()).device
    latents = vae.encode(images.to(device, dtype)).latent_dist.mean
    return (latents - (vae.config.get("shift_factor") or 0.0)) * vae.config.scaling_factor


def vae_decode(vae, x0: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] from latents scaled as `vae_encode` makes them."""
    latents = x0 / vae.config.scaling_factor + (vae.config.get("shift_factor") or 0.0)
    return vae.decode(latents.to(next(vae.parameters()).dtype)).sample


def public_config(scheduler) -> dict:
    """A scheduler's constructor arguments, without diffusers' bookkeeping keys (`_class_name`, ...)."""
    return {k: v for k, v in scheduler.config.items() if not k.startswith("_")}
