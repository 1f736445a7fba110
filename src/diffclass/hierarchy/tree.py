"""`LabelTree`: the label hierarchy hierarchical strategies descend; leaves are the classifier's classes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from diffclass.errors import DiffclassError


@dataclass
class TreeNode:
    id: str
    name: str
    children: list[str] = field(default_factory=list)
    class_index: int | None = None  # set on leaves only
    prompt: str | None = None  # text for text-conditioned models; defaults to the name

    @property
    def is_leaf(self) -> bool:
        return not self.children


class LabelTree:
    """A rooted tree over class indices 0..num_classes-1, validated on construction."""

    def __init__(self, nodes: list[TreeNode], num_classes: int | None = None):
        self.nodes: dict[str, TreeNode] = {}
        for node in nodes:
            if node.id in self.nodes:
                raise DiffclassError(f"tree: duplicate node id {node.id!r}")
            self.nodes[node.id] = node
        self.parent: dict[str, str] = {}
        for node in nodes:
            for child in node.children:
                if child not in self.nodes:
                    raise DiffclassError(f"tree: node {node.id!r} has unknown child {child!r}")
                if child in self.parent:
                    raise DiffclassError(f"tree: node {child!r} has two parents ({self.parent[child]!r}, {node.id!r})")
                self.parent[child] = node.id
        roots = [n.id for n in nodes if n.id not in self.parent]
        if len(roots) != 1:
            found = ", ".join(map(repr, roots[:5])) or "none (every node has a parent: a cycle)"
            raise DiffclassError(f"tree: expected exactly one root, found {found}")
        self.root = roots[0]
        self._check_reachable()
        self.leaf_of: dict[int, str] = {}
        for node in nodes:
            if node.is_leaf:
                if node.class_index is None:
                    raise DiffclassError(f"tree: node {node.id!r} has no children and no class (an empty node)")
                if node.class_index in self.leaf_of:
                    raise DiffclassError(
                        f"tree: class {node.class_index} is the leaf of both {self.leaf_of[node.class_index]!r} "
                        f"and {node.id!r}"
                    )
                self.leaf_of[node.class_index] = node.id
            elif node.class_index is not None:
                raise DiffclassError(f"tree: internal node {node.id!r} also names class {node.class_index}")
        n = num_classes if num_classes is not None else len(self.leaf_of)
        missing = sorted(set(range(n)) - set(self.leaf_of))
        extra = sorted(set(self.leaf_of) - set(range(n)))
        if missing or extra:
            raise DiffclassError(
                f"tree: leaves must be classes 0..{n - 1} exactly once; "
                + (f"missing {missing[:5]}" if missing else f"unknown {extra[:5]}")
            )
        self.num_classes = n

    def _check_reachable(self) -> None:
        seen, stack = set(), [self.root]
        while stack:
            node = stack.pop()
            seen.add(node)
            stack.extend(self.nodes[node].children)
        if len(seen) != len(self.nodes):
            stray = sorted(set(self.nodes) - seen)
            raise DiffclassError(f"tree: nodes not reachable from the root (a cycle?): {stray[:5]}")

    # --- what strategies need -------------------------------------------------------------------------
    def children(self, node_id: str) -> list[str]:
        return list(self.nodes[node_id].children)

    def leaves_under(self, node_id: str) -> list[int]:
        """Class indices of the leaves below (or at) a node, in tree order."""
        return [n.class_index for n in self.walk(node_id) if n.is_leaf]  # type: ignore[misc]

    def depth(self, node_id: str) -> int:
        d = 0
        while node_id != self.root:
            node_id = self.parent[node_id]
            d += 1
        return d

    def ancestors(self, node_id: str) -> list[str]:
        """From the node's parent up to the root."""
        out = []
        while node_id != self.root:
            node_id = self.parent[node_id]
            out.append(node_id)
        return out

    def frontier(self, level: int) -> list[str]:
        """Nodes at depth `level`, plus leaves shallower than it (so the frontier still covers every class)."""
        out, stack = [], [(self.root, 0)]  # iterative: a tree may be deeper than Python's recursion limit
        while stack:
            node_id, depth = stack.pop()
            node = self.nodes[node_id]
            if depth == level or node.is_leaf:
                out.append(node_id)
            else:
                stack.extend((child, depth + 1) for child in reversed(node.children))
        return out

    def classes_at(self, level: int) -> list[str]:
        """Each class's node in the frontier of depth `level` (its ancestor there, or the leaf itself where the tree
        is shallower): two classes that share it are the same answer at that level."""
        owner = [""] * self.num_classes
        for node_id in self.frontier(level):
            for c in self.leaves_under(node_id):
                owner[c] = node_id
        return owner

    def internal_nodes(self) -> list[str]:
        """Every node a hierarchical strategy may score besides the classes: internal, the root excluded."""
        return [n.id for n in self.walk() if not n.is_leaf and n.id != self.root]

    def walk(self, start: str | None = None) -> Iterator[TreeNode]:
        """Every node below `start` (default: the root), in tree order, without recursion."""
        stack = [start or self.root]
        while stack:
            node = self.nodes[stack.pop()]
            yield node
            stack.extend(reversed(node.children))

    @property
    def max_depth(self) -> int:
        depth, deepest, stack = {self.root: 0}, 0, [self.root]
        while stack:
            node_id = stack.pop()
            for child in self.nodes[node_id].children:
                depth[child] = depth[node_id] + 1
                deepest = max(deepest, depth[child])
                stack.append(child)
        return deepest

    def level_counts(self) -> list[tuple[int, int]]:
        """(internal nodes, leaves) per depth."""
        counts: dict[int, list[int]] = {}
        for node in self.walk():
            counts.setdefault(self.depth(node.id), [0, 0])[int(node.is_leaf)] += 1
        return [tuple(counts[d]) for d in sorted(counts)]  # type: ignore[misc]

    def prompt(self, node_id: str) -> str:
        node = self.nodes[node_id]
        return node.prompt or node.name

    def collapse_chains(self) -> LabelTree:
        """Merge every single-child chain: a node with one internal child adopts its grandchildren, and a node
        whose only child is a leaf is replaced by that leaf."""
        nodes = {k: TreeNode(v.id, v.name, list(v.children), v.class_index, v.prompt) for k, v in self.nodes.items()}

        def absorb(node_id: str) -> str:
            """Take over the children of single internal children; a non-root node left with one child (a leaf)
            gives way to it."""
            node = nodes[node_id]
            while len(node.children) == 1 and not nodes[node.children[0]].is_leaf:
                node.children = list(nodes[node.children[0]].children)
            return node.children[0] if len(node.children) == 1 and node_id != self.root else node_id

        absorb(self.root)
        stack = [self.root]  # iterative: trees deeper than Python's recursion limit collapse too
        while stack:
            node = nodes[stack.pop()]
            node.children = [absorb(c) for c in node.children]
            stack.extend(node.children)
        keep, stack = set(), [self.root]
        while stack:
            keep.add(stack[-1])
            stack.extend(nodes[stack.pop()].children)
        return LabelTree([n for k, n in nodes.items() if k in keep], self.num_classes)

    # --- files ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "root": self.root,
            "nodes": [
                {
                    k: v
                    for k, v in dict(
                        id=n.id, name=n.name, prompt=n.prompt, children=n.children or None, class_index=n.class_index
                    ).items()
                    if v is not None
                }
                for n in self.walk()
            ],
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n")

    @classmethod
    def from_dict(cls, data: dict, num_classes: int | None = None) -> LabelTree:
        if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
            raise DiffclassError("tree: expected a JSON object with a 'nodes' list")
        nodes = []
        for raw in data["nodes"]:
            if not isinstance(raw, dict) or "id" not in raw:
                raise DiffclassError(f"tree: every node needs an 'id', got {str(raw)[:60]}")
            index = raw.get("class_index")
            if index is not None and (not isinstance(index, int) or isinstance(index, bool) or index < 0):
                raise DiffclassError(f"tree: node {raw['id']!r} has class_index {index!r}; it must be an integer >= 0")
            if not isinstance(raw.get("children", []), list):
                raise DiffclassError(f"tree: the children of node {raw['id']!r} must be a list")
            try:
                nodes.append(
                    TreeNode(
                        id=str(raw["id"]),
                        name=str(raw.get("name", raw["id"])),
                        children=[str(c) for c in raw.get("children", [])],
                        class_index=index,
                        prompt=raw.get("prompt"),
                    )
                )
            except (TypeError, ValueError) as exc:
                raise DiffclassError(f"tree: bad node {raw.get('id')!r}: {exc}") from None
        tree = cls(nodes, num_classes)
        if "root" in data and data["root"] != tree.root:
            raise DiffclassError(f"tree: 'root' says {data['root']!r} but the root is {tree.root!r}")
        return tree

    @classmethod
    def load(cls, path: str | Path, num_classes: int | None = None) -> LabelTree:
        path = Path(path)
        from diffclass.files import read_json

        return cls.from_dict(read_json(path, "tree file"), num_classes)
