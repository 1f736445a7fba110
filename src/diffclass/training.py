"""DDPM training of class-conditional UNets (AdamW, EMA, resumable checkpoints) and DDIM sampling from them."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler
from diffusers.training_utils import EMAModel

from diffclass.backbones.base import q_sample
from diffclass.backbones.class_unet import ClassConditionalUNet
from diffclass.data.augment import Augmentation
from diffclass.data.base import ImageDataset
from diffclass.errors import DiffclassError, check_device, check_range
from diffclass.files import read_json
from diffclass.hub import weights_digest
from diffclass.hub.checkpoints import (
    CHECKPOINT_DIR,
    STATE_META,
    read_checkpoint,
    restore_state,
    state_tensors,
    write_checkpoint,
)
from diffclass.progress import err_console, progress_bar

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    steps: int = 3000
    batch_size: int = 128
    lr: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "cpu"
    ancestor_probability: float = 0.0  # chance of conditioning a sample on an ancestor of its class instead
    augment: str = "none"  # an Augmentation spec applied to each batch's clean images (pixel models)
    hold_out: float = 0.0  # fraction of the training groups (or images) never trained on, kept for honest tuning
    init_from: str | None = None  # the saved model (and its weights digest) training started from, if any

    def __post_init__(self):
        check_range("--lr", self.lr, 0, 10, low_open=True)
        check_range("--hold-out", self.hold_out, 0, 0.9)
        check_range("--ema-decay", self.ema_decay, 0, 1)
        check_device(self.device)


def batch_generator(seed: int, step: int) -> torch.Generator:
    """Each step's batch, timesteps and noise depend only on (seed, step), so a resumed run replays exactly."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def save_checkpoint(folder: Path, step: int, unet, ema: EMAModel, optimizer, config: TrainConfig | dict) -> None:
    tensors, param_groups = state_tensors(unet, optimizer)
    tensors.update({f"ema.{i}": p.detach().cpu().contiguous() for i, p in enumerate(ema.shadow_params)})
    ema_scalars = {k: v for k, v in ema.state_dict().items() if k != "shadow_params"}
    recipe = config if isinstance(config, dict) else asdict(config)
    write_checkpoint(folder, tensors, dict(step=step, config=recipe, ema=ema_scalars, param_groups=param_groups))


def load_checkpoint(folder: Path, unet, ema: EMAModel, optimizer) -> int:
    try:
        tensors, meta = read_checkpoint(folder)
        restore_state(tensors, meta["param_groups"], unet, optimizer)
        shadow = [tensors[f"ema.{i}"] for i in range(len(ema.shadow_params))]
        ema.load_state_dict(dict(meta["ema"], shadow_params=shadow))
        return int(meta["step"])
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:  # missing, damaged or another model's
        raise DiffclassError(f"checkpoint in {folder} cannot be resumed: {str(exc).splitlines()[0]}") from None


def _ancestor_table(backbone, device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """[num_classes, max_ancestors] rows padded with the class itself, and how many ancestors each class has."""
    rows = backbone.ancestor_rows()
    width = max((len(r) for r in rows), default=0)
    if width == 0:
        return None, None
    table = torch.tensor([r + [c] * (width - len(r)) for c, r in enumerate(rows)], device=device)
    return table, torch.tensor([len(r) for r in rows], device=device)


class Optimisation:
    """What training and distillation share: AdamW with warmup, gradient clipping and an EMA of the weights (the
    saved model), checkpointed every `checkpoint_every` steps with the recipe, resumable."""

    def __init__(self, network: torch.nn.Module, config, checkpoint: Path, recipe, what: str):
        self.network, self.config, self.checkpoint, self.recipe, self.what = network, config, checkpoint, recipe, what
        self.optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.lr_schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / max(1, config.warmup_steps))
        )
        self.ema = EMAModel(network.parameters(), decay=config.ema_decay, use_ema_warmup=True, power=3 / 4)

    def saved_recipe(self) -> dict:
        """The recipe the checkpoint was made with (refused in one line when there is no checkpoint)."""
        state = self.checkpoint / STATE_META
        if not state.is_file():
            raise DiffclassError(f"nothing to resume: no checkpoint in {self.checkpoint}")
        meta = read_json(state, "checkpoint record")
        if not isinstance(meta, dict) or not isinstance(meta.get("config", {}), dict):
            raise DiffclassError(f"{state} is damaged; start again in a new --out")
        return meta.get("config", {})

    def resume(self) -> int:
        self.saved_recipe()
        start = load_checkpoint(self.checkpoint, self.network, self.ema, self.optimizer)
        self.lr_schedule.last_epoch = start
        logger.info(f"resumed from step {start}")
        return start

    def step(self, loss: torch.Tensor, step: int, bar, task) -> None:
        """One optimiser step on `loss` (a non-finite loss stops the run), progress, and the checkpoint when due."""
        if not torch.isfinite(loss):
            raise DiffclassError(f"{self.what} diverged at step {step} (loss {loss.item()}); lower --lr")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), 1.0)
        self.optimizer.step()
        self.lr_schedule.step()
        self.ema.step(self.network.parameters())
        bar.update(task, advance=1, status=f"loss {loss.item():.5f}")
        if (step + 1) % self.config.checkpoint_every == 0 or step + 1 == self.config.steps:
            save_checkpoint(self.checkpoint, step + 1, self.network, self.ema, self.optimizer, self.recipe)
            if not bar.live.is_started or not err_console.is_terminal:
                logger.info(f"step {step + 1}/{self.config.steps} loss {loss.item():.5f}")

    def finish(self) -> None:
        """The EMA weights into the network, ready to save."""
        self.ema.copy_to(self.network.parameters())
        self.network.eval()


def train(
    backbone,
    dataset: ImageDataset,
    out_dir: str | Path,
    config: TrainConfig,
    resume: bool = False,
    show_progress: bool = True,
    keep_out: list[str] | None = None,
) -> ClassConditionalUNet:
    """Train the backbone's denoiser with the epsilon-prediction DDPM loss on (image, class) pairs; the saved model
    holds the EMA weights. Works for every backbone: class-conditional UNets (with ancestor conditioning when
    they know a tree) and text-conditioned latent models (a class is its prompt). `keep_out` names groups or
    images already held out (a pruned model's parent's): never trained on, and recorded as held out."""
    out_dir = Path(out_dir)
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    held_out = keep_out or (dataset.held_out(config.hold_out, config.seed) if config.hold_out > 0 else [])
    if held_out and set(held_out) & set(dataset.hold_out_keys):
        dataset, _ = dataset.split_held_out(held_out)
    unet = backbone.denoiser.to(device).train()  # only the denoiser learns (a VAE and text encoder stay frozen)
    alphas_cumprod = backbone.alphas_cumprod.to(device, torch.float32)  # DDPM's, or a flow model's equivalent
    optimisation = Optimisation(unet, config, out_dir / CHECKPOINT_DIR, config, "training")
    start = optimisation.resume() if resume else 0
    with torch.no_grad():  # pixels, or VAE latents computed once
        images = torch.cat([backbone.encode(dataset.images[i : i + 256]) for i in range(0, len(dataset), 256)])
    images = images.to(device)
    labels = dataset.labels.to(device)
    ancestor_table, ancestor_counts = _ancestor_table(backbone, device)
    augmentation = Augmentation.parse(config.augment)
    if augmentation and images.shape[1:] != dataset.images.shape[1:]:
        raise DiffclassError("--augment transforms pixels; this model trains on latents")
    started = time.time()
    with progress_bar(show_progress) as bar:
        task = bar.add_task("train", total=config.steps, completed=start, status="")
        for step in range(start, config.steps):
            gen = batch_generator(config.seed, step)
            idx = torch.randint(len(images), (config.batch_size,), generator=gen).to(device)
            t = torch.randint(len(alphas_cumprod), (config.batch_size,), generator=gen).to(device)
            eps = torch.randn(images[idx].shape, generator=gen).to(device)
            cond = labels[idx]
            if config.ancestor_probability > 0 and ancestor_table is not None:
                # ancestor training: an internal node's embedding learns p(x | node), not just its leaves
                counts = ancestor_counts[cond]
                swap = (torch.rand(len(cond), generator=gen).to(device) < config.ancestor_probability) & (counts > 0)
                pick = (torch.rand(len(cond), generator=gen).to(device) * counts).long()
                cond = torch.where(swap, ancestor_table[cond, pick.clamp(max=ancestor_table.shape[1] - 1)], cond)
            x_t = q_sample(augmentation(images[idx], gen), eps, alphas_cumprod[t])  # no draws when augment is none
            loss = F.mse_loss(backbone.predict_noise(x_t, t, backbone.condition(cond.tolist())), eps)
            optimisation.step(loss, step, bar, task)
    optimisation.finish()
    backbone.info.training = dict(asdict(config), seconds=round(time.time() - started, 1), dataset=dataset.name)
    if held_out:
        backbone.info.training["held_out"] = held_out  # the groups or images tuning may use
    backbone.info.dataset = dataset.name
    backbone.save_pretrained(out_dir)
    return backbone


@torch.no_grad()
def sample(backbone: ClassConditionalUNet, labels: torch.Tensor, steps: int = 50, seed: int = 0) -> torch.Tensor:
    """DDIM samples for the given class labels, in [-1, 1]; the same seed gives the same images."""
    scheduler = DDIMScheduler(**backbone.info.scheduler)
    scheduler.set_timesteps(steps)
    info = backbone.info
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((len(labels), info.channels, info.image_size, info.image_size), generator=gen)
    x = x.to(backbone.device)
    cond = backbone.condition(labels.tolist())
    for t in scheduler.timesteps:
        eps = backbone.predict_noise(x, t.expand(len(x)).to(backbone.device), cond)
        x = scheduler.step(eps, t, x).prev_sample
    return x.clamp(-1, 1).cpu()


def save_sample_grid(images: torch.Tensor, class_names: list[str], per_class: int, path: str | Path) -> None:
    """A PNG grid, one row per class labelled with its name; many classes wrap into side-by-side blocks."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = min(len(class_names), 27)
    blocks = math.ceil(len(class_names) / rows)
    width = per_class + 2  # two narrow columns per block hold the class names
    ratios = ([2.4] + [1] * per_class + [0.2]) * blocks
    fig, axes = plt.subplots(
        rows,
        blocks * width,
        figsize=(sum(ratios) * 0.5, rows * 0.5),
        squeeze=False,
        gridspec_kw=dict(width_ratios=ratios),
    )
    pictures = ((images + 1) / 2).permute(0, 2, 3, 1).numpy()
    for ax in axes.flat:
        ax.axis("off")
    for i, picture in enumerate(pictures):
        label, column = divmod(i, per_class)
        block, row = divmod(label, rows)
        ax = axes[row, block * width + 1 + column]
        ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray", vmin=0, vmax=1)
        if column == 0:
            name_ax = axes[row, block * width]
            name_ax.text(
                0.95, 0.5, class_names[label], transform=name_ax.transAxes, ha="right", va="center", fontsize=7
            )
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01, wspace=0.05, hspace=0.05)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def forget_fitting(info) -> None:
    """Drop what was fitted to weights that training is about to change: the window, temperature, typical error,
    timestep weights and front (calibrate, fit-temperature and tune fit them again)."""
    info.timestep_range, info.temperature, info.typical_error, info.weighting, info.front = None, 1.0, None, None, None


def train_model(
    out: str | Path,
    dataset: str,
    config: TrainConfig,
    *,
    width: int = 16,
    image_size: int | None = None,
    tree: str | None = None,
    resume: bool = False,
    init_from: str | Path | None = None,
) -> ClassConditionalUNet:
    """Train a new class-conditional UNet on an embedded dataset into `out`, or with `resume` continue the one
    checkpointed there. A `tree` (shipped name or JSON) gives its internal nodes embeddings of their own.
    `init_from` starts from a saved model's weights instead (its architecture, classes and tree; a fresh optimiser),
    e.g. to train a shipped model further; what was fitted to the old weights (window, temperature, front) is
    dropped."""
    from diffclass.backbones import load_backbone
    from diffclass.data import load_dataset
    from diffclass.hierarchy import load_tree
    from diffclass.hub import INFO_FILE

    out = Path(out)
    data = load_dataset(dataset, "train", image_size)  # a user's folder: its classes, size and colour as it has them
    if resume and (out / INFO_FILE).is_file():
        backbone = load_backbone(out)
        if backbone.info.training.get("steps", 0) < config.steps:  # a finished run trained further
            forget_fitting(backbone.info)
    elif init_from is not None:
        backbone = load_backbone(init_from)
        if backbone.info.backbone != "class_unet" or backbone.info.class_names != data.class_names:
            raise DiffclassError(f"--init-from {init_from}: not a class-conditional model of {dataset}'s classes")
        forget_fitting(backbone.info)
        config.init_from = f"{init_from} ({weights_digest(init_from)})"
    else:
        from diffclass.placement import fit_anchors

        label_tree = load_tree(tree, len(data.class_names)) if tree else None
        torch.manual_seed(config.seed)
        backbone = ClassConditionalUNet.create(
            data.class_names,
            data.images.shape[-1],
            data.images.shape[1],
            width=width,
            dataset=data.name,  # a folder by its absolute path
            tree=label_tree,
            anchors=fit_anchors(data.images, data.labels, len(data.class_names)),  # for `registered`
        )
    return train(backbone, data, out, config, resume=resume)


def sample_grid(
    model: str | Path, out: str | Path, per_class: int = 8, steps: int = 50, seed: int = 0, device: str = "cpu"
) -> None:
    """A PNG grid of DDIM samples of a class-conditional model, one row per class."""
    from diffclass.backbones import backbone_kind, load_backbone

    if backbone_kind(model)[0] != "class_unet":  # the kind its folder declares, before anything is built
        raise DiffclassError(f"{model}: sampling draws from class-conditional UNet models")
    backbone = load_backbone(model, device=device)
    names = backbone.info.class_names
    labels = torch.arange(len(names)).repeat_interleave(per_class)
    save_sample_grid(sample(backbone, labels, steps=steps, seed=seed), names, per_class, out)
