"""Label trees: the hierarchy over classes that hierarchical strategies descend, and the class lists of the shipped
trees (ImageNet, CIFAR) in their standard order."""

from functools import lru_cache
from pathlib import Path

from diffclass.errors import DiffclassError
from diffclass.hierarchy.tree import LabelTree, TreeNode

TREES = Path(__file__).resolve().parent.parent / "assets" / "trees"

__all__ = ["LabelTree", "TreeNode", "load_tree", "shipped_class_names", "shipped_trees"]


def shipped_trees() -> list[str]:
    return sorted(p.stem for p in TREES.glob("*.json"))


@lru_cache(maxsize=8)
def _load_shipped(name: str, num_classes: int | None) -> LabelTree:
    """Shipped trees are read once per process (the ImageNet one is asked for once per wnid folder)."""
    return LabelTree.load(TREES / f"{name}.json", num_classes)


def load_tree(name_or_path: str, num_classes: int | None = None) -> LabelTree:
    """A shipped tree by name (`glyphs`, `emoji`, `imagenet`, `cifar100`, `cifar10`) or a tree JSON file."""
    if (TREES / f"{name_or_path}.json").is_file():
        return _load_shipped(name_or_path, num_classes)
    path = Path(name_or_path)
    if path.is_dir():
        raise DiffclassError(f"{name_or_path}: is a folder, not a tree file")
    if path.is_file() or name_or_path.endswith(".json"):
        return LabelTree.load(name_or_path, num_classes)
    raise DiffclassError(
        f"unknown tree {name_or_path!r}: not a file, nor a shipped tree ({', '.join(shipped_trees())})"
    )


def shipped_class_names(name: str) -> list[str] | None:
    """Class names in the standard order for `imagenet`, `cifar100`, `cifar10` (the leaves of the shipped trees)."""
    if name not in ("imagenet", "cifar100", "cifar10"):
        return None
    tree = load_tree(name)
    return [tree.nodes[tree.leaf_of[c]].name for c in range(tree.num_classes)]
