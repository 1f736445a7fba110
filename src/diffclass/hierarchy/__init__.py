"""Label trees: the hierarchy over classes that hierarchical strategies descend."""

from functools import lru_cache
from pathlib import Path

from diffclass.errors import DiffclassError
from diffclass.hierarchy.tree import LabelTree, TreeNode

TREES = Path(__file__).resolve().parent.parent / "assets" / "trees"

__all__ = ["LabelTree", "TreeNode", "load_tree", "shipped_trees"]


def shipped_trees() -> list[str]:
    return sorted(["glyphs", *(p.stem for p in TREES.glob("*.json"))])


@lru_cache(maxsize=8)
def _load_shipped(name: str, num_classes: int | None) -> LabelTree:
    """Shipped trees are read once per process (the ImageNet one is asked for once per wnid folder)."""
    return LabelTree.load(TREES / f"{name}.json", num_classes)


def load_tree(name_or_path: str, num_classes: int | None = None) -> LabelTree:
    """A shipped tree by name (`glyphs`, `imagenet`, `cifar100`, `cifar10`) or a tree JSON file."""
    if name_or_path == "glyphs":
        from diffclass.data.glyphs import glyph_tree

        return glyph_tree()
    if (TREES / f"{name_or_path}.json").is_file():
        return _load_shipped(name_or_path, num_classes)
    if Path(name_or_path).is_file() or name_or_path.endswith(".json"):
        return LabelTree.load(name_or_path, num_classes)
    raise DiffclassError(
        f"unknown tree {name_or_path!r}: not a file, nor a shipped tree ({', '.join(shipped_trees())})"
    )
