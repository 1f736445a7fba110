"""See inside one decision: the classes' errors against the timestep on the shared noise, the paired differences to
the winner, where in the image the winner and the runner-up differ, and what each top class "sees" (the model's
estimate of the clean image under that class, from the same noisy image).

The decision itself is a plain `classify` with the same seed and strategy, so its numbers are the ones a user
gets; the curves and pictures come from extra network calls on the same noise bank. A DiDiCM model's decision is
a walk of its sampler over the label, so for it the figure shows that path instead: each top class's probability
after each step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from diffclass.backbones.base import q_sample
from diffclass.backbones.latent import vae_decode
from diffclass.decision import Decision

CURVE_CLASSES = 5  # classes drawn against the timestep
VIEW_CLASSES = 3  # classes whose clean-image estimates are shown
VIEW_TIMESTEPS = 3  # timesteps those estimates are taken at


@dataclass
class Explanation:
    image_id: str
    decision: Decision
    timesteps: list[int]  # sorted: the curve's x axis
    errors: dict[int, list[float]]  # class -> error at each timestep (one noise draw each, shared by every class)
    difference_to_winner: dict[int, dict[str, float]]  # class -> paired mean difference to the winner and its s.e.
    heatmap: list[list[float]]  # per pixel: runner-up's squared error minus the winner's (> 0: the pixel favours it)
    views: dict[int, list[list[list[float]]]] = field(default_factory=dict)  # class -> x0 estimates [H, W] or [H, W, 3]
    view_timesteps: list[int] = field(default_factory=list)
    image: list = field(default_factory=list)  # the input as the model sees it, [H, W] or [H, W, 3] in [0, 1]
    names: list[str] = field(default_factory=list)  # the model's class names
    attention: dict[int, list[list[list[float]]]] = field(default_factory=dict)  # text models: class -> word maps

    def to_json(self) -> dict:
        d = self.decision
        return dict(
            image_id=self.image_id,
            prediction=d.class_name,
            label=d.label,
            nfe=d.nfe,
            top=[dict(label=c, name=self.names[c], probability=round(p, 4)) for c, p in d.top(CURVE_CLASSES)],
            trace=d.trace,
            timesteps=self.timesteps,
            errors={self.names[c]: [round(e, 6) for e in v] for c, v in self.errors.items()},
            difference_to_winner={self.names[c]: v for c, v in self.difference_to_winner.items()},
            heatmap=_rounded(self.heatmap),
            view_timesteps=self.view_timesteps,
            attention={self.names[c]: _rounded(v) for c, v in self.attention.items()},
        )


def _rounded(values):
    return [_rounded(v) for v in values] if isinstance(values, list) else round(values, 6)


def _picture(x: torch.Tensor) -> list:
    """[C, H, W] in [-1, 1] -> nested lists [H, W] (grey) or [H, W, 3], in [0, 1]."""
    x = ((x.float().clamp(-1, 1) + 1) / 2).cpu()
    return (x[0] if x.shape[0] == 1 else x.permute(1, 2, 0)).tolist()


@dataclass
class SamplerExplanation:
    """A DiDiCM decision: the label distribution its sampler holds after each step, for the final top classes."""

    image_id: str
    decision: Decision
    sampler: str
    times: list[float]  # the label process's time at each step, from 1 (uniform) towards 0 (the label)
    path: dict[int, list[float]]  # class -> probability after each step
    image: list = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        d = self.decision
        return dict(
            image_id=self.image_id,
            prediction=d.class_name,
            label=d.label,
            nfe=d.nfe,
            sampler=self.sampler,
            top=[dict(label=c, name=self.names[c], probability=round(p, 4)) for c, p in d.top(CURVE_CLASSES)],
            times=[round(t, 4) for t in self.times],
            path={self.names[c]: [round(p, 4) for p in v] for c, v in self.path.items()},
        )


@torch.no_grad()
def explain_sampler(classifier, image: torch.Tensor, strategy=None, image_id: str = "image") -> SamplerExplanation:
    """A DiDiCM model's decision on one image and its sampler's path (the same seeded run as `classify`)."""
    decision = classifier.classify(image[None], strategy, [image_id])[0]
    spec = classifier.strategy(strategy)
    generators = classifier.generators([image_id])  # the same stream as `classify` gives this image
    posterior = classifier.model.posterior(image[None], spec, generators)
    top = decision.ranking[:CURVE_CLASSES]
    path = {c: [float(step[0, c]) for step in posterior.path] for c in top}
    return SamplerExplanation(
        image_id, decision, spec.name, posterior.times, path, _picture(image), classifier.class_names
    )


@torch.no_grad()
def explain(
    classifier, image: torch.Tensor, strategy=None, image_id: str = "image", slots: int = 16
) -> Explanation | SamplerExplanation:
    """The decision on one image [C, H, W] in [-1, 1], and what it rests on (`slots` timesteps of the window)."""
    if classifier.scorer is None:  # no denoising errors to show: the sampler's path instead
        return explain_sampler(classifier, image, strategy, image_id)
    decision = classifier.classify(image[None], strategy, [image_id])[0]
    backbone, scorer = classifier.backbone, classifier.scorer
    slots = min(slots, scorer.grid.size)
    memo = scorer.start(image[None], [image_id], classifier.strategy(strategy).placement)[0]  # read as decided
    top = decision.ranking[:CURVE_CLASSES]
    table = memo.errors(top, range(slots)).double()  # [classes, slots]
    order = sorted(range(slots), key=lambda s: scorer.grid.timestep(s))
    errors = {c: [float(table[i, s]) for s in order] for i, c in enumerate(top)}
    differences = {}
    for i, c in enumerate(top[1:], start=1):
        d = table[i] - table[0]
        differences[c] = dict(mean=float(d.mean()), standard_error=float(d.std() / slots**0.5) if slots > 1 else 0.0)
    alphas = backbone.alphas_cumprod
    heat = torch.zeros(memo.x0.shape[-2:])
    for s in order[slots // 4 : 3 * slots // 4 + 1]:  # the middle of the window, where the classes differ most
        eps = memo.noise(s)[None]
        t = torch.tensor([scorer.grid.timestep(s)])
        x_t = q_sample(memo.x0[None], eps, alphas[t])
        cond = backbone.condition(top[:2])
        eps_hat = backbone.predict_noise(x_t.expand(2, *x_t.shape[1:]), t.expand(2).to(x_t.device), cond)
        err = ((eps_hat.float() - eps.float()) ** 2).mean(1).cpu()  # [2, h, w]
        heat += err[1] - err[0]
    views, attention = {}, {}
    picks = [order[round(j * (slots - 1) / max(1, VIEW_TIMESTEPS - 1))] for j in range(VIEW_TIMESTEPS)]
    for c in top[:VIEW_CLASSES]:
        views[c], attention[c] = [], []
        for s in picks:
            t = torch.tensor([scorer.grid.timestep(s)])
            a = alphas[t].to(memo.x0.device, torch.float32).view(1, 1, 1, 1)
            eps = memo.noise(s)[None]
            x_t = q_sample(memo.x0[None], eps, alphas[t])
            eps_hat = backbone.predict_noise(x_t, t.to(x_t.device), backbone.condition([c]))
            x0_hat = (x_t - (1 - a).sqrt() * eps_hat.float()) / a.sqrt()
            views[c].append(_picture(_decoded(backbone, x0_hat)[0]))
            words = backbone.word_attention(x_t, t.to(x_t.device), c)  # text-conditioned: where its words are seen
            if words is not None:
                attention[c].append(words.tolist())
    view_timesteps = [scorer.grid.timestep(s) for s in picks]
    return Explanation(
        image_id,
        decision,
        [scorer.grid.timestep(s) for s in order],
        errors,
        differences,
        heat.tolist(),
        views,
        view_timesteps,
        _picture(image),
        classifier.class_names,
        {c: maps for c, maps in attention.items() if maps},
    )


def _decoded(backbone, x0: torch.Tensor) -> torch.Tensor:
    """Pixels of a clean estimate: as is in pixel space, through the VAE for latent models."""
    return x0 if backbone.vae is None else vae_decode(backbone.vae, x0)


def stage_rows(trace: list[dict]) -> list[tuple[str, int, int | None]]:
    """(label, classes scored, classes kept) per entry of a decision's trace, for the figure: tree levels of a
    hierarchical descent, a beam's steps, or the numbered stages of the final strategy."""
    rows, stage = [], 0
    for entry in trace:
        if "level" in entry:
            where = f"level {entry['level']}"
        elif "step" in entry:
            where = f"step {entry['step']}"
        else:
            stage += 1
            where = f"stage {stage}"
        rows.append((f"{where}\n{entry['slots']} slots", entry["candidates"], entry.get("kept")))
    return rows


def explain_plot(explanation: Explanation | SamplerExplanation, path) -> None:
    """One figure: the input, the top classes' clean-image estimates, the error curves, the heat map, the top-5,
    the strategy's stages (for a DiDiCM model: the input, the top-5 and the sampler's path)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if isinstance(explanation, SamplerExplanation):
        return _sampler_plot(explanation, path, plt)
    e, names = explanation, explanation.names
    columns = max(4, len(e.view_timesteps) + 1)
    rows = 2 + len(e.views) + len(e.attention)
    fig = plt.figure(figsize=(3 * columns, 2.6 * rows))
    grid = fig.add_gridspec(rows, columns)
    cmap = "gray" if not isinstance(e.image[0][0], list) else None
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(e.image, cmap=cmap, vmin=0, vmax=1)
    ax.set_title("input (as the model sees it)", fontsize=8)
    ax.axis("off")
    ax = fig.add_subplot(grid[0, 1])
    limit = max(1e-12, max(abs(v) for row in e.heatmap for v in row))
    shown = ax.imshow(e.heatmap, cmap="RdBu", vmin=-limit, vmax=limit)
    d = e.decision
    runner = d.ranking[1] if len(d.ranking) > 1 else d.label
    ax.set_title(f"where {names[d.label]} beats {names[runner]}", fontsize=8)
    ax.axis("off")
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label(f"error gap (blue: favours {names[d.label]})", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    ax = fig.add_subplot(grid[0, 2:])
    top = d.top(CURVE_CLASSES)
    ax.barh([names[c] for c, _ in reversed(top)], [p for _, p in reversed(top)], color="tab:blue")
    ax.set_xlim(0, 1)
    ax.set_title(f"prediction {names[d.label]} ({d.nfe} NFEs)", fontsize=9)
    ax = fig.add_subplot(grid[1, :])  # paired differences: the raw errors differ far more across t than classes
    winner = e.errors[d.label]
    for c, values in e.errors.items():
        if c != d.label:
            gaps = [v - w for v, w in zip(values, winner)]
            ax.plot(e.timesteps, gaps, "o-", markersize=3, label=f"{names[c]} minus {names[d.label]}")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"timestep t of the model's grid, {e.timesteps[0]}-{e.timesteps[-1]} (one shared noise draw each)")
    ax.set_ylabel("error minus the winner's\n(above 0: the winner fits better)", fontsize=8)
    ax.set_title("the same noisy image under each class: how much worse each runner-up denoises it", fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    for r, (c, pictures) in enumerate(e.views.items(), start=2):
        for j, (picture, t) in enumerate(zip(pictures, e.view_timesteps)):
            ax = fig.add_subplot(grid[r, j])
            ax.imshow(picture, cmap=cmap, vmin=0, vmax=1)
            ax.set_title(f"{names[c]}: clean estimate at t={t}", fontsize=7)
            ax.axis("off")
    for r, (c, maps) in enumerate(e.attention.items(), start=2 + len(e.views)):
        for j, (heat, t) in enumerate(zip(maps, e.view_timesteps)):
            ax = fig.add_subplot(grid[r, j])
            ax.imshow(heat, cmap="magma")
            ax.set_title(f"attention on '{names[c]}' at t={t}", fontsize=7)
            ax.axis("off")
    stages = stage_rows(d.trace)
    if stages and rows > 2:  # the pictures leave the last column free
        ax = fig.add_subplot(grid[2:, columns - 1])
        labels, scored, kept = zip(*stages)
        ax.bar(range(len(stages)), scored, color="tab:blue", alpha=0.35, label="scored")
        ax.bar(range(len(stages)), [k or 0 for k in kept], color="tab:blue", label="kept")
        ax.set_xticks(range(len(stages)), labels, fontsize=6, rotation=90 if len(stages) > 6 else 0)
        if max(scored) > 20 * max(1, min(scored)):
            ax.set_yscale("log")
        ax.set_ylabel("classes")
        ax.set_title(f"the strategy's stages ({d.nfe} NFEs)", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sampler_plot(e: SamplerExplanation, path, plt) -> None:
    names, d = e.names, e.decision
    fig = plt.figure(figsize=(11, 3.4))
    grid = fig.add_gridspec(1, 4)
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(e.image, cmap="gray" if not isinstance(e.image[0][0], list) else None, vmin=0, vmax=1)
    ax.set_title("input (as the model sees it)", fontsize=8)
    ax.axis("off")
    ax = fig.add_subplot(grid[0, 1])
    top = d.top(CURVE_CLASSES)
    ax.barh([names[c] for c, _ in reversed(top)], [p for _, p in reversed(top)], color="tab:blue")
    ax.set_xlim(0, 1)
    ax.set_title(f"prediction {names[d.label]} ({d.nfe} NFEs, {e.sampler})", fontsize=9)
    ax = fig.add_subplot(grid[0, 2:])
    steps = list(range(1, len(e.times) + 1))
    for c, values in e.path.items():
        ax.plot(steps, values, "o-", markersize=3, label=names[c] + (" (winner)" if c == d.label else ""))
    ax.set_xticks(steps, [f"{i}\nt={t:.2f}" for i, t in zip(steps, e.times)], fontsize=7)
    ax.set_xlabel("sampler step (label process time t)")
    ax.set_ylabel("probability of the class")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
