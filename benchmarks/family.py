"""The whole family on one benchmark: every strategy replayed on one error table of every class and tree node on
every test image, with top-1 and top-5 per test group, NFEs and GMACs per image, top-1 at each level of the tree,
how well each level scores, and the seed paper's claim for hierarchical descent tested with its standard error.

    python benchmarks/family.py --model emoji --slots 4 [--twin plain-emoji] [--records runs/family-emoji]
                                [--json results/emoji/family.json] [--plot docs/emoji_family.png]
    python benchmarks/family.py --model emoji --slots 4 --compute-only   # one more worker on the same table
    python benchmarks/family.py --model emoji --slots 4 --held-out 227 --records runs/tune-emoji   # tune's table

The table holds errors [images, classes + internal nodes, slots] on the first --slots slots of the model's grid
and noise bank: exactly the network work of a live `exhaustive(n=slots)` plus the nodes, so every strategy that
asks for no more slots ranks and counts NFEs as it would live. It is computed in parts of --part images, each
stored under --records when done, so an interrupted run loses at most one part and several processes (each with
--compute-only) can fill one table: a worker claims a part before computing it and skips parts others hold.
With --held-out N the images are the N the model's training held out, drawn as `diffclass tune --images N` draws
them, so the table a tuning kept under its --cache is read back instead of computed again.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import diffclass
from diffclass.errors import DiffclassError
from diffclass.loading import eval_dataset, unseen_images
from diffclass.progress import console
from diffclass.replay import ErrorTable, Replayed, score_levels
from diffclass.strategies.families import candidate_families
from diffclass.tuning import FilterRun

RULES = ("rule=top-fraction;K=0.5", "rule=within-std;m=2")  # the seed paper's fixed ratio and 2σ rules
TOLERANCE = 0.005  # "reaches exhaustive": within half a point of its top-1, as the seed papers read it


def table_parts(clf, data, slots: int, records: Path, part: int, claim: bool, stored_only: bool) -> list:
    """Every part of the table, computing those not yet stored; with `claim`, only parts no other worker has
    claimed (and None for those), for several processes filling one table; with `stored_only`, the stored ones."""
    parts = []
    count = math.ceil(len(data) / part)
    for i in range(count):
        indices = list(range(i * part, min((i + 1) * part, len(data))))
        folder = records / "tables" / f"part-{i:03d}"
        stored = list(folder.glob("errors-*.safetensors"))
        if stored_only and not stored:
            continue
        if claim and not stored:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                os.close(os.open(folder / "claimed", os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                parts.append(None)
                continue
        console.print(f"part {i + 1}/{count}: images {indices[0]}-{indices[-1]}")
        parts.append(ErrorTable.cached(folder, clf, data, indices, slots=slots, nodes=True))
    return parts


def family_specs(clf, slots: int, twin: str | None) -> list[tuple[str, str]]:
    """(family, spec) of every row but the seed paper's descents (`measure` adds them): exhaustive at each slot count,
    the adaptive schedules and descents `diffclass tune` searches, beams, the twin's prefilters and the default."""
    n = slots
    every = candidate_families(len(clf.class_names), slots, clf.tree is not None)
    specs = [("exhaustive", f"exhaustive(n={k})") for k in (1, 2, 4, 8, 16) if k <= n]
    specs += [("adaptive", spec) for spec in every["adaptive"]]
    specs += [("hdc", spec) for spec in every.get("hdc", ())]
    beams = [f"b={b};t_s={t_s};start=middle-out;n={n}" for b in (2, 4, 8) for t_s in (2, 3) if t_s < n]
    specs += [("beam", f"beam({beam})") for beam in beams]
    specs += [("hdc+beam", f"hdc+beam({rule};slots=1;{beam})") for rule in RULES for beam in beams]
    if twin:
        specs += [("prefilter", f"prefilter(by={twin};k={k};then=exhaustive(n={n}))") for k in (5, 10, 20)]
    specs.append(("default", clf.default_strategy))
    return list(dict.fromkeys(specs))


def paper_descents(final: str, level_slots, depths) -> list[str]:
    """The seed paper's form: each pruning rule descends the tree from `depths`, scoring each level on
    `level_slots`, and hands the leaves it collects to the classifier `final`."""
    return [
        f"hdc({rule};slots={slots};depth={depth};final={final})"
        for rule in RULES
        for slots in level_slots
        for depth in depths
    ]


def standard_error(run: Replayed, reference: Replayed) -> float:
    """One standard error of the paired difference of two top-1s on the same images."""
    n, swap = len(run.hits), run.against(reference)
    gained, lost = swap["gained"], swap["lost"]
    return math.sqrt(max(gained + lost - (gained - lost) ** 2 / n, 0.0)) / n


def describe(run: Replayed, groups: list[str], levels: list[list[str]]) -> dict:
    """Top-1 and top-5, top-1 per test group, and top-1 at each level of the tree above the classes."""
    per_group = {}
    for group in dict.fromkeys(groups or ()):  # data without groups (a folder of images) reports none
        hits = [h for h, g in zip(run.hits, groups) if g == group]
        per_group[group] = round(sum(hits) / len(hits), 4)
    at_level = [
        round(sum(owner[p] == owner[y] for p, y in zip(run.predictions, run.labels)) / len(run.labels), 4)
        for owner in levels
    ]
    return dict(top1=round(run.top1, 4), top5=round(run.top5, 4), per_group=per_group, top1_per_level=at_level)


def measure(clf, data, table: ErrorTable, twin, twin_name: str | None, where: str) -> dict:
    """Every row replayed on the table (the twin's from its own rankings), the seed paper's claim, and how well each
    level of the tree scores on 1, 2 and all the table's slots."""
    tree = clf.tree
    levels = [tree.classes_at(depth) for depth in range(1, tree.max_depth)] if tree else []
    filters = {twin_name: FilterRun.of(twin, data)} if twin else {}
    rows, runs, skipped = [], {}, []
    if twin:
        sieve = filters[twin_name]
        gmacs = sieve.nfe_per_image * sieve.macs_per_call / 1e9
        run = Replayed([r[:5] for r in sieve.rankings], data.labels.tolist(), sieve.nfe_per_image, gmacs)
        runs[twin_name] = run
        rows.append(
            dict(
                family="twin",
                spec=twin_name,
                nfe_per_image=run.nfe_per_image,
                gmacs_per_image=round(run.gmacs_per_image, 4),
                **describe(run, data.groups, levels),
            )
        )

    def replay(family: str, spec: str) -> None:
        try:
            strategy = clf.strategy(spec)
            run = clf.replay(table, filters, strategy)
        except DiffclassError as exc:
            skipped.append(dict(spec=spec, why=str(exc)))
            return
        runs[spec] = run
        rows.append(
            dict(
                family=family,
                spec=spec,
                strategy=strategy.name,
                nfe_per_image=round(run.nfe_per_image, 2),
                gmacs_per_image=round(run.gmacs_per_image, 4),
                **describe(run, data.groups, levels),
            )
        )

    for family, spec in family_specs(clf, table.slots, twin_name):
        replay(family, spec)
    # the seed paper's descents, into the full budget and into the cheapest adaptive that reaches exhaustive
    reference = f"exhaustive(n={table.slots})"
    adaptive = cheapest(rows, "adaptive", runs[reference].top1 - TOLERANCE)
    descents = {}
    if tree:
        descents = dict.fromkeys(
            paper_descents(reference, sorted({1, min(2, table.slots), table.slots}), (1, 2)), reference
        )
        if adaptive:
            descents |= dict.fromkeys(paper_descents(adaptive["spec"], (1, 2), (1,)), adaptive["spec"])
    for spec in descents:
        replay("hdc", spec)
    for row in rows if twin else ():  # the paired difference from the twin, on the same images
        run, twin_run = runs[row["spec"]], runs[twin_name]
        gap = round(run.top1 - twin_run.top1, 4)
        row["against_twin"] = dict(gap=gap, standard_error=round(standard_error(run, twin_run), 4))
    return dict(
        model=clf.model_name,
        images_from=where,
        groups=sorted(set(data.groups or ())),
        images=len(table.image_ids),
        slots=table.slots,
        rows=rows,
        skipped=skipped,
        claim=hdc_claim(rows, runs, reference, adaptive, descents),
        levels=[
            dict(slots=s, **vars(check)) for s in sorted({1, 2, table.slots}) for check in score_levels(table, tree, s)
        ]
        if tree
        else [],
    )


def cheapest(rows: list[dict], family: str, target: float) -> dict | None:
    """The cheapest row of a family whose top-1 reaches `target`."""
    reaching = [r for r in rows if r["family"] == family and r["top1"] >= target - 1e-9]
    return min(reaching, key=lambda r: (r["nfe_per_image"], -r["top1"]), default=None)


def hdc_claim(rows: list[dict], runs: dict, reference: str, adaptive: dict | None, descents: dict) -> dict:
    """The seed paper's claim on this table: does a descent that hands its leaves to a classifier (`descents`:
    spec -> that classifier) reach exhaustive's top-1 (within half a point) at >= 1.6x less compute than that
    classifier alone, and than `adaptive`, the cheapest adaptive schedule that reaches exhaustive on these slots?"""
    target = runs[reference].top1 - TOLERANCE
    by_spec = {r["spec"]: r for r in rows}
    out = dict(
        reference=reference,
        reference_top1=by_spec[reference]["top1"],
        target=round(target, 4),
        reference_nfe=by_spec[reference]["nfe_per_image"],
        adaptive=adaptive,
        hdc=cheapest(rows, "hdc", target),
        rules=[],
    )
    for spec, final in descents.items():
        if spec not in runs:  # skipped: it asks for more than the table holds
            continue
        row, run = by_spec[spec], runs[spec]
        out["rules"].append(
            dict(
                spec=spec,
                final=final,
                top1=row["top1"],
                nfe_per_image=row["nfe_per_image"],
                gap=round(row["top1"] - out["reference_top1"], 4),
                gap_standard_error=round(standard_error(run, runs[reference]), 4),
                reaches=row["top1"] >= target - 1e-9,
                less_than_final=round(by_spec[final]["nfe_per_image"] / row["nfe_per_image"], 2),
                less_than_adaptive=adaptive and round(adaptive["nfe_per_image"] / row["nfe_per_image"], 2),
            )
        )
    return out


def pareto(rows: list[dict]) -> list[dict]:
    """The rows no cheaper-or-equal row of the same family beats in top-1, cheapest first."""
    front = []
    for row in sorted(rows, key=lambda r: (r["nfe_per_image"], -r["top1"])):
        if not any(f["family"] == row["family"] and f["top1"] >= row["top1"] for f in front):
            front.append(row)
    return front


def print_result(result: dict) -> None:
    from rich.table import Table

    rows = pareto(result["rows"])
    groups = list(rows[0]["per_group"])
    table = Table(
        title=f"{result['model']}: {result['images']} {result['images_from']} images, {result['slots']} slots "
        "(each family's Pareto front; every row is in the JSON)"
    )
    for column in (
        "strategy",
        *groups,
        "top-1",
        "top-5",
        *(f"level {d + 1}" for d in range(len(rows[0]["top1_per_level"]))),
        "NFEs",
        "GMACs",
    ):
        if column == "strategy":
            table.add_column(column, overflow="fold", min_width=40)
        else:
            table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r["spec"],
            *(f"{r['per_group'][g]:.1%}" for g in groups),
            f"{r['top1']:.2%}",
            f"{r['top5']:.2%}",
            *(f"{v:.1%}" for v in r["top1_per_level"]),
            f"{r['nfe_per_image']:.0f}",
            f"{r['gmacs_per_image']:.2f}",
        )
    console.print(table)
    claim = result["claim"]
    console.print(
        f"exhaustive: {claim['reference']} {claim['reference_top1']:.2%} at {claim['reference_nfe']:.0f} NFEs; "
        f"cheapest adaptive within half a point: {claim['adaptive'] and claim['adaptive']['spec']}"
    )
    for rule in claim["rules"]:
        console.print(
            f"  {rule['spec']}: {rule['top1']:.2%} ({rule['gap']:+.2%} ± {rule['gap_standard_error']:.2%}) at "
            f"{rule['nfe_per_image']:.0f} NFEs; reaches: {rule['reaches']}; "
            f"its final alone / it: {rule['less_than_final']}; cheapest adaptive / it: {rule['less_than_adaptive']}",
            markup=False,
        )
    for check in result["levels"]:
        console.print(
            f"level {check['level']} ({check['nodes']} nodes) on {check['slots']} slots: the true node ranks first on "
            f"{check['ranks_first']:.1%}; kept by "
            + ", ".join(f"{rule} {share:.1%}" for rule, share in check["survives"].items())
        )
    for skip in result["skipped"]:
        console.print(f"skipped {skip['spec']}: {skip['why']}", style="dim", markup=False)


def plot(result: dict, path: Path) -> None:
    """Top-1 against GMACs per image, each family's Pareto front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    front = pareto(result["rows"])
    for family in dict.fromkeys(r["family"] for r in front):
        points = sorted((r["gmacs_per_image"], r["top1"] * 100) for r in front if r["family"] == family)
        style = dict(marker="*", markersize=16, fillstyle="none") if family == "default" else dict(marker="o")
        ax.plot(*zip(*points), label=family, linestyle="-" if len(points) > 1 else "none", **style)
    ax.set_xscale("log")
    ax.set_xlabel("GMACs per image (log)")
    ax.set_ylabel(f"top-1 on {', '.join(result['groups'])} (%)")
    ax.set_title(
        f"{result['model']}: {result['images']} {result['images_from']} images, {result['slots']} slots per class"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="emoji")
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--part", type=int, default=24, help="images per stored part of the table")
    parser.add_argument("--twin", default=None, help="the plain twin: a row of its own and the prefilter's ranker")
    parser.add_argument("--records", type=Path, default=None, help="default: runs/family-MODEL")
    parser.add_argument("--limit", type=int, default=None, help="the first N test images only (a quick check)")
    parser.add_argument(
        "--held-out", type=int, default=None, help="N images the model's training held out, not the test split"
    )
    parser.add_argument("--seed", type=int, default=0, help="draws the --held-out images, as `diffclass tune` does")
    parser.add_argument("--compute-only", action="store_true", help="fill unclaimed parts of the table and stop")
    parser.add_argument("--stored-only", action="store_true", help="report on the parts stored so far")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    try:
        clf = diffclass.load(args.model)
        records = args.records or Path("runs") / f"family-{Path(args.model).name}"
        if args.held_out:  # the table `diffclass tune --images N --slots S --cache RECORDS` keeps, read back
            data = unseen_images(clf, args.held_out, args.seed)
            table = ErrorTable.cached(records, clf, data, slots=args.slots)
        else:
            data = eval_dataset(clf, clf.info.dataset)
            if args.limit:
                data = data.subset(range(min(args.limit, len(data))))
            parts = table_parts(clf, data, args.slots, records, args.part, args.compute_only, args.stored_only)
            if args.compute_only:
                return
            if not parts:
                raise DiffclassError(f"no part of the table is stored under {records} yet")
            table = ErrorTable.concat(parts)
            if args.stored_only:  # the images of the stored parts (the test order is shuffled: a fair sample)
                data = data.subset([data.ids.index(image_id) for image_id in table.image_ids])
        twin = diffclass.load(args.twin) if args.twin else None
        where = "held-out" if args.held_out else "test"
        result = measure(clf, data, table, twin, args.twin, where)
    except DiffclassError as exc:
        raise SystemExit(f"error: {exc}") from None
    flags = {k.replace("_", "-"): v for k, v in vars(args).items() if v not in (None, False) and k != "compute_only"}
    result["command"] = "python benchmarks/family.py " + " ".join(
        f"--{k}" if v is True else f"--{k} {v}" for k, v in flags.items()
    )
    print_result(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.plot:
        plot(result, args.plot)


if __name__ == "__main__":
    main()
