"""Distil a class-conditional teacher into an all-class student, whose one call predicts every class's noise.

For each noised training image the teacher predicts the noise under the true class and under a sample of other
classes; the student's heads for those classes learn to match it (MSE). Timesteps come mostly from the teacher's
calibrated window, where classification happens. Matching the noise is not the same as ranking the classes (their
errors differ by a small fraction of the error), so an optional term also asks the student's errors over all its
heads to rank the true class first: cross-entropy of softmax(-error / rank_temperature), on window timesteps only,
free because one call gives every head. AdamW, EMA and resumable checkpoints as in training.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from diffclass.backbones.all_class import AllClassUNet, class_list_digest
from diffclass.backbones.base import q_sample
from diffclass.data.augment import Augmentation
from diffclass.errors import DiffclassError, check_device, check_range
from diffclass.hub import weights_digest
from diffclass.hub.checkpoints import CHECKPOINT_DIR
from diffclass.progress import progress_bar
from diffclass.training import Optimisation, batch_generator

logger = logging.getLogger(__name__)


@dataclass
class DistillConfig:
    steps: int = 4000
    batch_size: int = 64
    classes_per_image: int = 8  # the true class and this many - 1 others drawn at random
    window_fraction: float = 0.8  # share of timesteps drawn from the teacher's window (the rest: the whole range)
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    rank_weight: float = 0.0  # weight of the ranking term (0: plain noise distillation)
    rank_temperature: float = 0.003  # in units of the per-pixel squared error
    init: str | None = None  # an all-class student of the same teacher to start from (default: the teacher's copy)
    augment: str = "none"  # an Augmentation spec applied to each batch's clean images (the teacher sees them too)
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        check_range("--lr", self.lr, 0, 10, low_open=True)
        check_range("--window-fraction", self.window_fraction, 0, 1)
        check_range("--rank-weight", self.rank_weight, 0, 1e6)
        check_range("--rank-temperature", self.rank_temperature, 0, 1e6, low_open=True)
        check_device(self.device)
        self.augment = Augmentation.parse(self.augment).spec  # the canonical spec is what the recipe records


def distill(
    teacher_name: str | Path,
    out_dir: str | Path,
    config: DistillConfig,
    resume: bool = False,
    show_progress: bool = True,
) -> AllClassUNet:
    """Train an all-class student of the class-conditional model `teacher_name` on the teacher's training data
    and save it (EMA weights) to `out_dir`, with the recipe and the teacher's weights digest in its
    diffclass.json; `resume` continues the checkpoint there (refused if it was made from another teacher)."""
    from diffclass.backbones import backbone_kind, load_backbone
    from diffclass.data import load_dataset

    out_dir = Path(out_dir)
    device = torch.device(config.device)
    if backbone_kind(teacher_name)[0] != "class_unet":
        raise DiffclassError(f"{teacher_name}: distillation needs a class-conditional UNet teacher")
    teacher = load_backbone(teacher_name, device=device)
    if not teacher.info.dataset:
        raise DiffclassError(f"{teacher_name} does not name the embedded dataset it was trained on")
    data = load_dataset(
        teacher.info.dataset, "train", teacher.info.image_size, teacher.info.channels, teacher.info.class_names
    )
    if data.class_names != teacher.info.class_names:
        raise DiffclassError(f"the {data.name} training data's classes are not the teacher's")
    held_out = (teacher.info.training or {}).get("held_out") or []
    if held_out:  # the student learns from what the teacher learnt from; the rest stays unseen for fitting
        data, _ = data.split_held_out(held_out)
    recipe = dict(
        asdict(config),
        teacher=str(teacher_name),
        teacher_weights=weights_digest(teacher_name),
        teacher_classes=class_list_digest(teacher.info.class_names),
    )
    torch.manual_seed(config.seed)
    student = AllClassUNet.from_teacher(teacher) if config.init is None else _initial_student(config.init, recipe)
    unet = student.denoiser.to(device).train()
    optimisation = Optimisation(unet, config, out_dir / CHECKPOINT_DIR, recipe, "distillation")
    start = 0
    if resume:
        if optimisation.saved_recipe().get("teacher_weights") != recipe["teacher_weights"]:
            raise DiffclassError(
                f"the checkpoint in {optimisation.checkpoint} was distilled from other teacher weights"
            )
        start = optimisation.resume()
    images, labels = teacher.encode(data.images).to(device), data.labels.to(device)
    alphas_cumprod = teacher.alphas_cumprod.to(device, torch.float32)
    num_timesteps, classes = len(alphas_cumprod), len(teacher.info.class_names)
    low, high = teacher.info.timestep_range or (0, num_timesteps - 1)
    per_image = min(config.classes_per_image, classes)
    augmentation = Augmentation.parse(config.augment)
    started = time.time()
    with progress_bar(show_progress) as bar:
        task = bar.add_task("distill", total=config.steps, completed=start, status="")
        for step in range(start, config.steps):
            gen = batch_generator(config.seed, step)
            b = config.batch_size
            idx = torch.randint(len(images), (b,), generator=gen).to(device)
            x0, y = augmentation(images[idx], gen), labels[idx]  # no draws when augment is none
            in_window = torch.rand(b, generator=gen) < config.window_fraction
            t = torch.where(
                in_window,
                torch.randint(low, high + 1, (b,), generator=gen),
                torch.randint(num_timesteps, (b,), generator=gen),
            ).to(device)
            eps = torch.randn(x0.shape, generator=gen).to(device)
            x_t = q_sample(x0, eps, alphas_cumprod[t])
            others = torch.randint(classes - 1, (b, per_image - 1), generator=gen).to(device)
            chosen = torch.cat([y[:, None], others + (others >= y[:, None]).long()], dim=1)  # [b, per_image]
            with torch.no_grad():
                target = teacher.predict_noise(
                    x_t.repeat_interleave(per_image, 0), t.repeat_interleave(per_image), chosen.flatten()
                ).view(b, per_image, *x0.shape[1:])
            heads = student.predict_all(x_t, t)
            pick = chosen.view(b, per_image, 1, 1, 1).expand(-1, -1, *x0.shape[1:])
            loss = F.mse_loss(heads.gather(1, pick), target)
            if config.rank_weight > 0 and in_window.any():
                window = in_window.to(device)
                errors = (heads[window] - eps[window, None]).pow(2).flatten(2).mean(2)  # [in window, classes]
                ranking = F.cross_entropy(-errors / config.rank_temperature, y[window])
                loss = loss + config.rank_weight * ranking
            optimisation.step(loss, step, bar, task)
    optimisation.finish()
    student.info.training = dict(distillation=recipe, seconds=round(time.time() - started, 1), dataset=data.name)
    if held_out:
        student.info.training["held_out"] = held_out
    student.save_pretrained(out_dir)
    return student


def _initial_student(folder: str, recipe: dict) -> AllClassUNet:
    """A saved student to go on from; refused unless it was distilled from the same teacher weights."""
    from diffclass.backbones import backbone_kind, load_backbone

    if backbone_kind(folder)[0] != "all_class_unet":  # the kind its folder declares, before anything is built
        raise DiffclassError(f"{folder} is not an all-class student")
    student = load_backbone(folder)
    if student.info.training.get("distillation", {}).get("teacher_weights") != recipe["teacher_weights"]:
        raise DiffclassError(f"{folder} was not distilled from {recipe['teacher']} (its teacher weights differ)")
    recipe["init_weights"] = weights_digest(folder)
    return student
