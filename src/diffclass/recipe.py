"""`diffclass fit`: the whole recipe from a folder of labelled images to a tuned, calibrated classifier, the one
the shipped models were made with: hold out a validation part, train the class-conditional UNet with augmentation,
calibrate its timestep window, fit its temperature and tune its front on the held-out part (and, when asked,
train the plain twin as a prefilter), then measure the result on a third of the held-out images that none of
those steps saw, so the summary is what the model does on new images, not on the ones it was tuned on. Last, the
same recipe is trained again on every image, held-out part included, and becomes the model, keeping what was fitted.

Each step is recorded in `OUT/fit.json` when it is done, so a rerun with `resume` skips what is done and training
continues from its checkpoint to the weights an uninterrupted run gives.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from diffclass.errors import DiffclassError
from diffclass.files import read_json, write_text_atomic

STEPS = ("train", "twin", "calibrate", "temperature", "tune", "measure", "refit")
RECORD = "fit.json"
MEASURED_SHARE = 1 / 3  # of the held-out images: kept from calibration, temperature and tuning, measured on
MEASURE_CALLS = 400_000  # exhaustive's network calls the measure step may spend, but it measures at least
MEASURED_AT_LEAST = 100  # images (when the held-out part has them)
TWIN = "twin"  # the plain twin's sub-folder of OUT
MEASURED = "held-out"  # where the refit keeps the model that was measured
REFIT = "refit"  # where the refit trains (removed once the refit is the model)
FITTED = ("timestep_range", "temperature", "typical_error", "front")  # what the refit keeps of the measured model
ASKED_BY = dict(twin="with_twin", refit="refit")  # the steps a plan may leave out, and its flag that asks for each


@dataclass
class FitPlan:
    """Every option of every step; `plan_for` sizes the defaults to the data."""

    steps: int
    width: int
    batch_size: int = 128
    lr: float = 2e-3
    hold_out: float = 0.15
    augment: str = "none"
    image_size: int | None = None
    with_twin: bool = False
    twin_steps: int = 3000
    refit: bool = True
    seed: int = 0
    checkpoint_every: int = 250
    images: dict = field(default_factory=lambda: dict(calibrate=100, temperature=200, tune=400, measure=1000))


def plan_for(images: int, side: int, channels: int, **overrides) -> FitPlan:
    """Defaults sized to the data and a CPU, from the recipe of the shipped glyphs model (11,000 steps of 128 over
    12,616 images): about 120 passes over the images (1,500 to 11,000 steps of 128), 16 channels for images up to
    16 px and 32 above, and colour jitter only where the images have colour. No shifts or scale changes unless
    asked: on glyphs, whose characters sit where the training images put them, they cost the diffusion classifier
    9 points of test top-1 (docs/own_data.md); `aligned(d)` handles objects that moved, at test time."""
    steps = min(11_000, max(1_500, round(120 * images / 128)))
    plan = FitPlan(steps=steps, width=16 if side <= 16 else 32, augment="colour=0.2" if channels == 3 else "none")
    for key, value in overrides.items():
        if value is not None:
            setattr(plan, key, value)
    return plan


def fit(dataset: str, out: str | Path, plan: FitPlan, resume: bool = False, progress: bool = True) -> dict:
    """Run the recipe's steps into `out` (skipping those `out/fit.json` records as done when `resume`) and return
    its record: the plan, the steps done with their seconds, and the held-out measurement."""
    out = Path(out)
    record_file = out / RECORD
    if record_file.is_file() and not resume:
        raise DiffclassError(f"{out} already holds a fit; pass --resume to continue it, or a new --out")
    if resume and not record_file.is_file():
        raise DiffclassError(f"nothing to resume: {out} holds no fit")
    record = read_json(record_file, "fit record") if resume else dict(dataset=dataset, plan=asdict(plan), done={})
    if not isinstance(record, dict) or not isinstance(record.get("done"), dict):
        raise DiffclassError(f"{record_file} is damaged; start the fit again in a new --out")
    if resume and record.get("plan") != asdict(plan):
        raise DiffclassError(f"{out} was fitted with other options; rerun it with the same ones to resume")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(record_file, json.dumps(record, indent=2))  # from now on a rerun must say --resume
    for step in STEPS:
        if step in record["done"] or (step in ASKED_BY and not getattr(plan, ASKED_BY[step])):
            continue
        started = time.time()
        result = RUNS[step](dataset, out, plan, progress)
        record["done"][step] = dict(seconds=round(time.time() - started, 1), **result)
        write_text_atomic(record_file, json.dumps(record, indent=2))
    if "refit" in record["done"]:
        shutil.rmtree(out / REFIT, ignore_errors=True)  # its weights are the model's now
    return record


def _train(dataset: str, out: Path, plan: FitPlan, progress: bool) -> dict:
    from diffclass.training import CHECKPOINT_DIR, TrainConfig, train_model

    config = TrainConfig(
        steps=plan.steps,
        batch_size=plan.batch_size,
        lr=plan.lr,
        checkpoint_every=plan.checkpoint_every,
        seed=plan.seed,
        augment=plan.augment,
        hold_out=plan.hold_out,
    )
    resume = (out / CHECKPOINT_DIR).is_dir()  # a killed run goes on from its last checkpoint
    train_model(out, dataset, config, width=plan.width, image_size=plan.image_size, resume=resume)
    return {}


def _twin(dataset: str, out: Path, plan: FitPlan, progress: bool) -> dict:
    from diffclass.data import load_dataset
    from diffclass.didicm.training import DiDiCMTrainConfig, train_didicm
    from diffclass.hub import ModelInfo
    from diffclass.training import CHECKPOINT_DIR

    info = ModelInfo.load(out)
    config = DiDiCMTrainConfig(
        steps=plan.twin_steps, baseline=True, hold_out=plan.hold_out, augment=plan.augment, seed=plan.seed
    )
    data = load_dataset(dataset, "train", info.image_size, info.channels, info.class_names)
    checkpoint = out / TWIN / CHECKPOINT_DIR
    twin = train_didicm(data, config, checkpoint=checkpoint, resume=checkpoint.is_dir(), show_progress=progress)
    twin.save_pretrained(out / TWIN)
    return {}


def _held_out(out: Path, step: str, plan: FitPlan):
    """The model and its held-out images for `step`, drawn by seed: the measure step's share of them is never
    fitted on (the last third of the draw), the other steps' are the rest; each capped at the plan's count."""
    from diffclass.classifier import Classifier
    from diffclass.loading import unseen_images

    classifier = Classifier.load(out)
    twin = str(out / TWIN) if plan.with_twin else None  # it held out the same part; tuning needs what both did
    held = unseen_images(classifier, None, plan.seed, prefilter_ranker=twin)
    if len(held) < 2:
        raise DiffclassError(f"{out} holds out {len(held)} image(s): fitting and measuring need 2 or more")
    cut = len(held) - max(1, round(MEASURED_SHARE * len(held)))
    part = range(cut, len(held)) if step == "measure" else range(cut)
    return classifier, held.subset(list(part)[: plan.images[step]])


def _calibrate(dataset: str, out: Path, plan: FitPlan, progress: bool) -> dict:
    from diffclass.calibration import calibrate

    classifier, data = _held_out(out, "calibrate", plan)
    result = calibrate(classifier, data, show_progress=progress)
    classifier.info.timestep_range = result.best_window
    classifier.info.save(out)
    return dict(window=list(result.best_window), images=len(data))


def _temperature(dataset: str, out: Path, plan: FitPlan, progress: bool) -> dict:
    from diffclass.classifier import fit_confidence

    classifier, data = _held_out(out, "temperature", plan)
    info = classifier.info
    info.temperature, info.typical_error = fit_confidence(classifier, data.images, data.labels, data.ids)
    classifier.info.save(out)
    return dict(temperature=classifier.info.temperature, images=len(data))


def _tune(dataset: str, out: Path, plan: FitPlan, progress: bool) -> dict:
    from diffclass.tuning import tune

    classifier, data = _held_out(out, "tune", plan)
    twin = str(out / TWIN) if plan.with_twin else None
    front = tune(classifier, data, prefilter=twin, prefilter_ranker=twin, progress=progress, tuned_on="held out")
    classifier.info.front = front
    classifier.info.save(out)
    return dict(images=len(data), points=len(front["points"]))


def _measure(dataset: str, out: Path, plan: FitPlan, progress: bool) -> dict:
    """The default strategy and exhaustive on the held-out images no step fitted on (at most 1,000, and no more
    than MEASURE_CALLS of exhaustive allow: it costs classes x slots calls an image, hours for a hundred classes
    on a CPU): top-1, NFEs, seconds, and the expected calibration error of the probabilities."""
    classifier, data = _held_out(out, "measure", plan)
    affordable = max(MEASURED_AT_LEAST, MEASURE_CALLS // classifier.info.front["reference_nfe"])
    data = data.subset(range(min(len(data), affordable)))
    measured, summaries = {}, {}
    for name, spec in (("default", None), ("exhaustive", classifier.info.front["reference_spec"])):
        strategy = classifier.strategy(spec).name
        if strategy not in summaries:  # a default that fell back to exhaustive is not run twice
            summaries[strategy] = classifier.evaluate(data, strategy, show_progress=progress)
        summary = summaries[strategy]
        measured[name] = dict(
            strategy=summary.strategy,
            top1=round(summary.top1, 4),
            nfe_per_image=round(summary.nfe_per_image, 2),
            seconds_per_image=round(summary.seconds_per_image, 4),
            ece=summary.ece,
        )
    return dict(images=len(data), **measured)


def _refit(dataset: str, out: Path, plan: FitPlan, progress: bool) -> dict:
    """Train the recipe again on every image and make it the model, keeping the window, temperature and front
    fitted on the held-out part (properties of the recipe and the data more than of one run's weights): the
    held-out part is data the final model should not go without (glyphs: 3 of 17 typefaces). The measured model
    is kept in OUT/held-out; a rerun after a kill resumes the training and redoes the copies."""
    from diffclass.hub import ModelInfo, folder_digest

    everything, work, measured = replace(plan, hold_out=0.0), out / REFIT, out / MEASURED
    _train(dataset, work, everything, progress)
    if plan.with_twin:
        _twin(dataset, work, everything, progress)
    if not measured.is_dir():
        partial = out / f"{MEASURED}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        _copy_model(out, partial)
        kept = ModelInfo.load(partial)
        if kept.front and plan.with_twin:  # its prefilter is its own twin, kept beside it
            kept.front = dict(kept.front, prefilter=str(measured / TWIN))
            kept.save(partial)
        partial.rename(measured)
    info, fitted = ModelInfo.load(work), ModelInfo.load(measured)
    for name in FITTED:
        setattr(info, name, getattr(fitted, name))
    if info.front:  # tuned with the measured model; carried to the refit's weights as the window is
        info.front = dict(info.front, weights=folder_digest(work), tuned_with=info.front["weights"])
        if plan.with_twin:
            info.front.update(prefilter=str(out / TWIN), prefilter_ranker=folder_digest(work / TWIN))
    info.training["fitted_on"] = (
        f"the {plan.hold_out:.0%} of the images {MEASURED}/ held out (this model trained on them)"
    )
    info.save(work)
    _copy_model(work, out)
    return dict(measured_model=MEASURED)


def _copy_model(source: Path, target: Path) -> None:
    """A model's files (and its twin's), without training states or the fit record."""
    for folder, into in ((source, target), (source / TWIN, target / TWIN)):
        if folder.is_dir():
            into.mkdir(parents=True, exist_ok=True)
            for path in folder.iterdir():
                if path.is_file() and path.name != RECORD:
                    shutil.copy2(path, into / path.name)


RUNS = dict(
    train=_train, twin=_twin, calibrate=_calibrate, temperature=_temperature, tune=_tune, measure=_measure, refit=_refit
)
