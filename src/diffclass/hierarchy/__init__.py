"""Label trees: the hierarchy over classes that hierarchical strategies descend."""

from diffclass.hierarchy.tree import LabelTree, TreeNode

__all__ = ["LabelTree", "TreeNode", "load_tree"]


def load_tree(name_or_path: str, num_classes: int | None = None) -> LabelTree:
    """A shipped tree by name (`glyphs`) or a tree JSON file."""
    from pathlib import Path

    if name_or_path == "glyphs":
        from diffclass.data.glyphs import glyph_tree

        return glyph_tree()
    if Path(name_or_path).is_file() or name_or_path.endswith(".json"):
        return LabelTree.load(name_or_path, num_classes)
    from diffclass.errors import DiffclassError

    raise DiffclassError(f"unknown tree {name_or_path!r}: not a file, nor a shipped tree (glyphs)")
