"""A data-driven label tree: classes grouped by the model itself, so HDC can be compared on a designed tree and
on one the model finds natural."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import AgglomerativeClustering

from diffclass.hierarchy.tree import LabelTree, TreeNode


def cluster_levels(features: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Nested Ward clusterings: level i groups the clusters of level i+1 (the last level groups the classes)."""
    levels = []
    current = features
    members = [[i] for i in range(len(features))]
    for size in reversed(sizes):
        size = max(2, min(size, len(current) - 1))
        labels = AgglomerativeClustering(n_clusters=size, linkage="ward").fit_predict(current)
        groups = [[m for j, g in enumerate(labels) if g == k for m in members[j]] for k in range(size)]
        current = np.stack([features[g].mean(axis=0) for g in groups])
        members = groups
        levels.insert(0, groups)
    return levels


def tree_from_groups(levels: list[list[list[int]]], class_names: list[str]) -> LabelTree:
    nodes = [TreeNode("root", "all classes")]
    parent_of_class = {c: "root" for c in range(len(class_names))}
    for depth, groups in enumerate(levels, start=1):
        for k, group in enumerate(groups):
            node_id = f"L{depth}/{k}"
            parent = parent_of_class[group[0]]
            nodes.append(TreeNode(node_id, f"group {depth}.{k}"))
            next(n for n in nodes if n.id == parent).children.append(node_id)
            for c in group:
                parent_of_class[c] = node_id
    for c, name in enumerate(class_names):
        leaf = TreeNode(f"class/{c}", name, class_index=c)
        next(n for n in nodes if n.id == parent_of_class[c]).children.append(leaf.id)
        nodes.append(leaf)
    return LabelTree(nodes, len(class_names)).collapse_chains()


def induce_tree(backbone, levels: int = 2) -> LabelTree:
    """Cluster the model's unit-normalised class embeddings (Ward) into `levels` nested levels of groups,
    about C^(i/(levels+1)) groups at level i; single-child chains are collapsed."""
    names = backbone.info.class_names
    table = backbone.unet.class_embedding.weight.detach().cpu().numpy()[: len(names)]
    table = table / np.linalg.norm(table, axis=1, keepdims=True)  # direction, not scale, says what a class is
    sizes = [max(2, round(len(names) ** ((i + 1) / (levels + 1)))) for i in range(levels)]
    return tree_from_groups(cluster_levels(table, sizes), names)
