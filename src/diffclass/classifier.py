"""The public face of the engine: a loaded model plus a scorer, classifying images with any strategy."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import torch
from PIL import Image

from diffclass.backbones import Backbone, call_cost, load_backbone
from diffclass.backbones.prompts import ONE_TEMPLATE, read_classes
from diffclass.data import load_dataset
from diffclass.data.base import dataset_background
from diffclass.data.images import check_batch, content_id, load_image, to_model_input
from diffclass.decision import Decision
from diffclass.errors import DiffclassError
from diffclass.evaluation import Evaluates, ImageClassifier, model_identity
from diffclass.hierarchy import LabelTree, load_tree
from diffclass.hub import MODEL_KINDS, ModelRef, resolve_model
from diffclass.prefiltered import Prefiltered
from diffclass.progress import progress_bar
from diffclass.records import json_digest
from diffclass.scoring import LOSSES, ErrorScorer, Loss, TimestepGrid
from diffclass.strategies import Prefilter, Strategy, StrategyContext, drive, make_strategy
from diffclass.strategies.families import DEFAULT_SPECS
from diffclass.weighting import TimestepWeighting
from diffclass.weighting import resolve as resolve_weighting

logger = logging.getLogger(__name__)
LOCKSTEP_BATCHES = 4  # first-stage batches per group of images classified in lockstep


class Classifier(Evaluates):
    """A diffusion classifier: `classify` scores every class by denoising error and returns `Decision`s."""

    def __init__(
        self,
        backbone: Backbone,
        *,
        loss: Loss = "l2",
        batch_size: int = 256,
        seed: int = 0,
        grid: TimestepGrid | None = None,
        model_name: str | ModelRef = "",
        tree: LabelTree | None = None,
        weighting: str | dict | TimestepWeighting | None = None,
    ):
        self.backbone = backbone
        if grid is None:
            t_range = backbone.info.timestep_range or (0, len(backbone.alphas_cumprod) - 1)
            grid = TimestepGrid(*t_range)
        weights = resolve_weighting(weighting, backbone.info.weighting)  # default: the model's stored weights
        self.scorer = ErrorScorer(backbone, grid, loss=loss, batch_size=batch_size, seed=seed, weighting=weights)
        self.named(model_name)
        self.tree = tree if tree is not None else backbone.info.label_tree()
        self.sieves: dict[str, ImageClassifier] = {}  # prefilter models by name, loaded once

    @classmethod
    def load(
        cls,
        name_or_path: str | Path | ModelRef = "digits",
        device: str = "cpu",
        class_names: Sequence[str] | None = None,
        templates: Sequence[str] | dict | None = None,
        dtype: str = "float32",
        **options,
    ) -> Classifier:
        """An embedded model's name (`digits`), a diffclass model folder, `sd:ID_OR_FOLDER` (zero-shot, needs
        `class_names`; `templates` like "a photo of a {}.") or `dit:ID_OR_FOLDER`."""
        model = resolve_model(name_or_path)
        backbone = load_backbone(model, device, class_names, templates, dtype)
        return cls(backbone, model_name=model, **options)

    @property
    def default_strategy(self) -> str:
        """`auto` once the model is tuned (`diffclass tune`), else the original method's adaptive schedule, sized
        to the model's timestep window."""
        return "auto" if self.info.front else "adaptive"

    @property
    def bench_specs(self) -> tuple[str, ...]:
        return DEFAULT_SPECS

    def identity(self) -> dict:
        """The model, and the scoring: seed, loss, grid and (when not uniform) the timestep weighting."""
        scorer = self.scorer
        identity = dict(
            model_identity(self, self.weights),
            seed=scorer.seed,
            loss=scorer.loss,
            grid=repr(scorer.grid),
            batch_size=None,
        )
        weighting = scorer.weighting.to_dict()
        if weighting["kind"] != "uniform":  # uniform is what every record made before weightings existed used
            identity["weighting"] = json_digest(weighting)
        # what changes a result besides the weights: the network's config (an activation, a width) and the noise
        # schedule; and, where fitted, the error scale that flattens an unfamiliar image's probabilities
        identity["network"] = json_digest(dict(self.backbone.denoiser.config))
        identity["scheduler"] = json_digest(self.info.scheduler)
        if self.info.typical_error is not None:
            identity["typical_error"] = json_digest(self.info.typical_error)
        return identity

    def use_tree(self, tree: LabelTree, mode: str | None = None, images=None, labels=None, **invert_options) -> str:
        """Descend `tree` with hierarchical strategies; internal nodes are conditioned by `mode` (default:
        `ancestor` when the model was trained with this tree, else `mean`; `inverted` learns them on training
        `images` and `labels`). Returns the mode used."""
        mode = self.backbone.use_tree(tree, mode, images, labels, **invert_options)
        self.tree = tree
        return mode

    @property
    def class_names(self) -> list[str]:
        return self.backbone.info.class_names

    @property
    def info(self):
        return self.backbone.info

    @cached_property
    def macs_per_call(self) -> int:
        """Multiply-accumulates of one network call on one image: with NFEs, the machine-independent cost."""
        return call_cost(self.backbone)[0]

    def strategy(self, spec: str | Strategy | None = None) -> Strategy:
        """The strategy a spec names (default: `default_strategy`)."""
        spec = spec or self.default_strategy
        front = self.info.front
        if front and isinstance(spec, str) and spec.startswith("auto") and front.get("weights") != self.weights:
            raise DiffclassError(
                f"the tuned front of {self.model_name} was made for other weights; rerun "
                "diffclass tune, or name a strategy"
            )
        grid = self.scorer.grid
        windowed = (grid.t_min, grid.t_max) != (0, len(self.backbone.alphas_cumprod) - 1)
        context = StrategyContext(len(self.class_names), grid.timesteps, self.tree, front, windowed, self.info.anchors)
        return make_strategy(spec, context)

    def images_per_pass(self) -> int:
        """How many images to run in lockstep: enough that the first stage fills about four batches, so that later
        stages, which score only the surviving classes (one timestep at a time for beam), still fill a batch
        instead of paying the per-call overhead on a few rows. An all-class network scores every class of an
        (image, slot) in one row, so it takes K times as many images. Results do not depend on it (see scoring)."""
        rows_per_slot = 1 if self.backbone.scores_all_classes else len(self.class_names)
        return max(1, LOCKSTEP_BATCHES * self.scorer.batch_size // rows_per_slot)

    def prepare(self, images: Sequence[str | Path | Image.Image]) -> torch.Tensor:
        """Files or PIL images of any size and mode -> the model's [B, C, H, W] input in [-1, 1]."""
        info = self.backbone.info
        options = dict(background=dataset_background(info.dataset))
        tensors = []
        for image in images:
            if isinstance(image, Image.Image):
                tensors.append(to_model_input(image, info.image_size, info.channels, **options)[0])
            else:
                tensors.append(load_image(image, info.image_size, info.channels, **options).tensor)
        return torch.stack(tensors)

    def classify(
        self,
        images: torch.Tensor | Sequence[str | Path | Image.Image],
        strategy: str | Strategy | None = None,
        image_ids: Sequence[str] | None = None,
        candidates: Sequence[Sequence[int]] | None = None,
    ) -> list[Decision]:
        """Classify images: a [B, C, H, W] tensor in [-1, 1], or files / PIL images (converted and resized); each
        image ranks every class, or its own `candidates` (what a prefilter's sieve kept).

        Ids key the noise bank (default: a hash of the content, so an image gets the same noise wherever it is).
        """
        if not isinstance(images, torch.Tensor):
            images = self.prepare(images)
        check_batch(images, image_ids)
        strategy = self.strategy(strategy)
        image_ids = list(image_ids) if image_ids is not None else [content_id(im) for im in images]
        runner = strategy.runner(self)
        if runner is not self:  # a composition (a prefilter) runs it
            return runner.classify(images, strategy, image_ids)
        decisions = []
        step = self.images_per_pass()
        scorer = self.scorer if strategy.grid is None else self.scorer.with_grid(strategy.grid)
        typical = self._typical_error(strategy)
        for start in range(0, len(images), step):
            began = time.perf_counter()
            batch, ids = images[start : start + step], image_ids[start : start + step]
            memos = scorer.start(batch, ids, strategy.placement)
            per_image = None if candidates is None else candidates[start : start + step]
            outcomes = drive(memos, strategy, range(len(self.class_names)), per_image)
            seconds = (time.perf_counter() - began) / len(memos)
            decisions += [self._decision(outcome, memo.nfe, seconds, typical) for memo, outcome in zip(memos, outcomes)]
        return decisions

    def replay(self, table, filters: dict | None = None, strategy: str | Strategy | None = None):
        """`strategy` replayed on an error table of this model (a `diffclass.replay.Replayed`: the images it gets
        right, NFEs and GMACs per image), as a live run gives them; a composition (a prefilter) prices its own
        stages."""
        strategy = self.strategy(strategy)
        runner = strategy.runner(self)
        if runner is not self:
            return runner.replay(table, filters)
        run = table.correct(strategy)
        run.gmacs_per_image = run.nfe_per_image * self.macs_per_call / 1e9
        return run

    @property
    def attack_strategy(self) -> str:
        """The default where it has a gradient (a prefilter in front of `exhaustive`), else `exhaustive(n=8)`:
        staged strategies drop classes, which has no gradient."""
        default = self.strategy(None)
        if isinstance(default, Prefilter) and default.then.kind == "exhaustive":
            return default.name
        return "exhaustive(n=8)"

    def logits_fn(self, strategy, image_ids: Sequence[str], eot: int = 0):
        """images [B, C, H, W] in [-1, 1] -> logits −(mean error over the strategy's slots) / temperature, with
        gradients through every class's network call; their argmax is `exhaustive(n=K)`'s decision on these ids.
        `eot` > 0 averages that many fresh noise draws per call instead of the bank's noise (expectation over
        transformation: the classifier attacked as the randomised function it is). The logits take `candidates`
        [B, k] to score only those classes ([B, k] out); a prefilter composition differentiates its own stand-in."""
        strategy = self.strategy(strategy)
        runner = strategy.runner(self)
        if runner is not self:
            return runner.logits_fn(strategy, image_ids, eot)
        if strategy.kind != "exhaustive":
            raise DiffclassError(
                f"attacks differentiate exhaustive(n=K) (every class on the same K slots), not {strategy.name}"
            )
        if self.backbone.vae is not None:
            raise DiffclassError(f"{self.model_name}: attacks need a pixel-space model; this one encodes with a VAE")
        scorer = self.scorer if strategy.grid is None else self.scorer.with_grid(strategy.grid)
        ids, slots, temperature = list(image_ids), strategy.n, self.info.temperature
        generator = torch.Generator().manual_seed(scorer.seed) if eot else None

        def logits(images: torch.Tensor, candidates: torch.Tensor | None = None) -> torch.Tensor:
            # float64: error gaps over a small T saturate float32
            draws = [scorer.differentiable_errors(images, ids, slots, generator, candidates) for _ in range(eot or 1)]
            return -torch.stack(draws).double().mean(0) / temperature

        logits.by_id = True  # each image's own noise: these logits hold for a batch of exactly these ids
        return logits

    def prefiltered(self, spec: Prefilter) -> Prefiltered:
        """This classifier behind the sieve `spec.by` names (loaded once per name)."""
        return Prefiltered(self, self.prefilter_model(spec.by), spec)

    def prefilter_model(self, name: str):
        """The prefilter's classifier, loaded once; it must know the same classes and see the same input. A
        `clip:` filter ranks this model's own classes with its prompts (or "a photo of a {}." without any)."""
        import diffclass.didicm.classifier  # noqa: F401  (registers the didicm model kind a sieve may be)
        from diffclass.clip_filter import ClipFilter
        from diffclass.strategies.prefilter import CLIP_PREFIX

        if name in self.sieves:
            return self.sieves[name]
        if name.startswith(CLIP_PREFIX):
            class_prompts = [
                self.backbone.prompts(c) or [t.format(n) for t in ONE_TEMPLATE] for c, n in enumerate(self.class_names)
            ]
            device = str(next(self.backbone.denoiser.parameters()).device)
            sieve = ClipFilter.from_pretrained(name[len(CLIP_PREFIX) :], self.class_names, class_prompts, device)
        else:
            model = resolve_model(name)
            sieve = MODEL_KINDS.get(model.kind).build(model)
            if sieve.class_names != self.class_names:
                raise DiffclassError(f"the prefilter {name} knows other classes than {self.model_name}")
            if (sieve.info.image_size, sieve.info.channels) != (self.info.image_size, self.info.channels):
                raise DiffclassError(f"the prefilter {name} takes another input size than {self.model_name}")
        self.sieves[name] = sieve
        return sieve

    def _typical_error(self, strategy: Strategy) -> float | None:
        """The winner's typical error when it was measured on the grid this strategy scores on."""
        typical = self.backbone.info.typical_error
        if typical is None or strategy.grid is not None or typical.get("grid") != repr(self.scorer.grid):
            return None
        return typical["error"]

    def _decision(self, outcome, nfe: int, seconds: float, typical: float | None = None) -> Decision:
        """The verdict, its probabilities softmax(-error / T); for an image whose best fit errs far more than
        the training data's (`typical`), T grows by that ratio, so that an image unlike anything the model knows
        is not given a confident answer, and the decision says how unfamiliar it is."""
        temperature = self.backbone.info.temperature
        unfamiliar = None
        if typical and outcome.scores:
            ratio = outcome.scores[outcome.ranking[0]] / typical
            if ratio > 1:
                temperature *= ratio
                unfamiliar = round(ratio, 2)
        scored = list(outcome.scores)
        logits = torch.tensor([-outcome.scores[c] / temperature for c in scored], dtype=torch.float64)
        probs = torch.softmax(logits, 0).tolist() if scored else []
        label = int(outcome.ranking[0])
        return Decision(
            label=label,
            class_name=self.class_names[label],
            ranking=[int(c) for c in outcome.ranking],
            scores={int(c): s for c, s in outcome.scores.items()},
            probabilities={int(c): p for c, p in zip(scored, probs)},
            nfe=nfe,
            seconds=seconds,
            trace=outcome.trace,
            unfamiliar=unfamiliar,
        )


def fit_confidence(
    classifier: Classifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    ids: Sequence[str],
    show_progress: bool = True,
    slots: int = 16,
) -> tuple[float, dict]:
    """What makes a model's probabilities mean something, fitted on labelled images it never trained on: the
    temperature minimising the negative log-likelihood of softmax(-error / T), and the typical error of the winning
    class (its 99th percentile), against which an image unlike the training data stands out.

    Raw errors differ between classes by a few thousandths, so softmax(-error) is nearly uniform; a fitted
    temperature turns the ranking into usable probabilities. Every class is scored on `slots` timesteps: fewer
    make a many-class model affordable (227 classes × 16 slots is 3,632 calls an image).
    """
    decisions, step, ids = [], classifier.images_per_pass(), list(ids)  # in passes: a long fit shows progress
    strategy = f"exhaustive(n={slots})"
    with progress_bar(show_progress) as bar:
        task = bar.add_task(f"fit-temperature {strategy}", total=len(images), status="")
        for start in range(0, len(images), step):
            part = slice(start, start + step)
            decisions += classifier.classify(images[part], strategy, ids[part])
            bar.update(task, completed=len(decisions))
    scores = torch.tensor([[d.scores[c] for c in range(len(classifier.class_names))] for d in decisions])
    winners = torch.tensor([d.scores[d.label] for d in decisions], dtype=torch.float64)
    typical = dict(error=float(torch.quantile(winners, 0.99)), grid=repr(classifier.scorer.grid), slots=slots)
    scores = scores - scores.mean(dim=1, keepdim=True)
    log_t = torch.tensor(math.log(scores.std().item() + 1e-12), requires_grad=True, dtype=torch.float64)
    optimizer = torch.optim.LBFGS([log_t], max_iter=100, line_search_fn="strong_wolfe")

    def nll():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(-scores / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(nll)
    return float(log_t.detach().exp()), typical


@MODEL_KINDS.register("diffusion", help="a noise network (a registered backbone) scored class by class", backbone=True)
def _load(
    ref: ModelRef,
    *,
    class_names: Sequence[str] | str | None = None,
    timesteps: str | TimestepGrid | None = None,
    loss: str | None = None,
    tree: str | LabelTree | None = None,
    node_conditioning: str | None = None,
    **options,
) -> Classifier:
    """`diffclass.load` for diffusion models: class names from a shipped list or file, a grid from "MIN-MAX", and
    a replacement label tree or node conditioning applied once the model is loaded."""
    if loss is not None and loss not in LOSSES:
        raise DiffclassError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    names = read_classes(class_names) if isinstance(class_names, str) else class_names
    grid = TimestepGrid.parse(timesteps) if isinstance(timesteps, str) else timesteps
    clf = Classifier.load(ref, class_names=names, loss=loss or "l2", grid=grid, **options)
    if tree is not None or node_conditioning is not None:
        label_tree = load_tree(tree, len(clf.class_names)) if isinstance(tree, str) else tree or clf.tree
        if label_tree is None:
            raise DiffclassError("node conditioning needs a tree: the model has none, pass one")
        images = labels = None
        if node_conditioning == "inverted":
            info = clf.info
            train = load_dataset(info.dataset or "digits", "train", info.image_size, info.channels, info.class_names)
            images, labels = train.images, train.labels
        mode = clf.use_tree(label_tree, node_conditioning, images, labels)
        logger.info(f"tree nodes conditioned by {mode}")
    return clf
