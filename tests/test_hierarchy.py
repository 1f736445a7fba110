import json

import pytest

from diffclass.errors import DiffclassError
from diffclass.hierarchy import LabelTree, TreeNode, load_tree


def small_tree() -> LabelTree:
    return LabelTree(
        [
            TreeNode("root", "thing", ["animal", "plant"]),
            TreeNode("animal", "animal", ["cat", "dog"]),
            TreeNode("plant", "plant", ["tree"]),
            TreeNode("tree", "tree", ["oak"]),
            TreeNode("cat", "cat", class_index=0),
            TreeNode("dog", "dog", class_index=1),
            TreeNode("oak", "oak", class_index=2, prompt="an oak tree"),
        ]
    )


def test_navigation():
    tree = small_tree()
    assert tree.root == "root" and tree.num_classes == 3 and tree.max_depth == 3
    assert tree.children("animal") == ["cat", "dog"]
    assert tree.leaves_under("root") == [0, 1, 2] and tree.leaves_under("plant") == [2]
    assert tree.depth("oak") == 3 and tree.ancestors("oak") == ["tree", "plant", "root"]
    assert tree.frontier(1) == ["animal", "plant"] and tree.frontier(2) == ["cat", "dog", "tree"]
    assert tree.frontier(9) == ["cat", "dog", "oak"]
    assert tree.prompt("oak") == "an oak tree" and tree.prompt("cat") == "cat"
    assert tree.level_counts() == [(1, 0), (2, 0), (1, 2), (0, 1)]
    assert tree.classes_at(1) == ["animal", "animal", "plant"]  # cat and dog are one answer at the first level
    assert tree.classes_at(2) == ["cat", "dog", "tree"]  # the leaves met above the level stand for themselves


def test_collapse_chains_keeps_every_class_once():
    collapsed = small_tree().collapse_chains()
    assert collapsed.children("root") == ["animal", "oak"]
    assert collapsed.leaves_under("root") == [0, 1, 2] and "tree" not in collapsed.nodes


def test_collapse_chains_is_iterative_on_a_chain_deeper_than_the_recursion_limit():
    import sys

    depth = sys.getrecursionlimit() + 500
    nodes = [TreeNode("root", "root", ["c0", "kept"]), TreeNode("kept", "kept", class_index=0)]
    nodes += [TreeNode(f"c{i}", f"c{i}", [f"c{i + 1}"]) for i in range(depth)]  # single internal children
    nodes += [
        TreeNode(f"c{depth}", "fork", ["a", "b"]),
        TreeNode("a", "a", class_index=1),
        TreeNode("b", "b", class_index=2),
    ]
    collapsed = LabelTree(nodes, 3).collapse_chains()
    assert collapsed.children("root") == ["c0", "kept"] and collapsed.children("c0") == ["a", "b"]
    assert sorted(collapsed.leaves_under("root")) == [0, 1, 2] and len(collapsed.nodes) == 5


def test_json_round_trip(tmp_path):
    small_tree().save(tmp_path / "t.json")
    again = LabelTree.load(tmp_path / "t.json")
    assert again.to_dict() == small_tree().to_dict()


def _nodes(*extra, drop=()):
    base = small_tree().to_dict()["nodes"]
    return {"nodes": [n for n in base if n["id"] not in drop] + list(extra)}


@pytest.mark.parametrize(
    "data, num_classes, message",
    [
        (_nodes({"id": "cat", "name": "again", "class_index": 5}), None, "duplicate node id"),
        (_nodes(drop=("dog",)), None, "unknown child"),
        (_nodes({"id": "x", "children": ["root"]}, {"id": "y", "children": ["x"]}, {"id": "root2"}), None, "root"),
        (_nodes({"id": "lynx", "class_index": 0}, drop=()), None, "root|class 0"),
        (_nodes(), 4, "missing \\[3\\]"),
        (_nodes({"id": "empty"}), None, "root"),
        ({"nodes": "nope"}, None, "'nodes' list"),
        ({"nodes": [{"name": "no id"}]}, None, "needs an 'id'"),
    ],
)
def test_malformed_trees_say_what_is_wrong(data, num_classes, message):
    with pytest.raises(DiffclassError, match=message):
        LabelTree.from_dict(data, num_classes)


def test_cycles_are_refused():
    with pytest.raises(DiffclassError, match="root|cycle"):
        LabelTree([TreeNode("a", "a", ["b"]), TreeNode("b", "b", ["a"]), TreeNode("c", "c", class_index=0)])
    with pytest.raises(DiffclassError, match="cycle|reachable|root"):
        LabelTree(
            [
                TreeNode("r", "r", ["leaf"]),
                TreeNode("leaf", "leaf", class_index=0),
                TreeNode("a", "a", ["b"]),
                TreeNode("b", "b", ["a"]),
            ]
        )


def test_empty_internal_node_and_class_twice():
    with pytest.raises(DiffclassError, match="empty node"):
        LabelTree([TreeNode("r", "r", ["a", "e"]), TreeNode("a", "a", class_index=0), TreeNode("e", "e")])
    with pytest.raises(DiffclassError, match="class 0 is the leaf of both"):
        LabelTree(
            [TreeNode("r", "r", ["a", "b"]), TreeNode("a", "a", class_index=0), TreeNode("b", "b", class_index=0)]
        )


def test_bad_json_file(tmp_path):
    (tmp_path / "bad.json").write_text("{nodes: [")
    with pytest.raises(DiffclassError, match="not valid JSON"):
        LabelTree.load(tmp_path / "bad.json")
    with pytest.raises(DiffclassError, match="no such tree"):
        LabelTree.load(tmp_path / "missing.json")
    (tmp_path / "ok.json").write_text(json.dumps(small_tree().to_dict()))
    assert load_tree(str(tmp_path / "ok.json")).num_classes == 3
    with pytest.raises(DiffclassError, match="unknown tree"):
        load_tree("imaginary")


def test_glyph_tree_is_three_levels_over_every_class():
    from diffclass.data.glyphs import glyph_classes

    tree = load_tree("glyphs")
    assert tree.num_classes == len(glyph_classes()) >= 100
    assert tree.max_depth == 3 and tree.frontier(1) == ["Latin", "Greek", "Cyrillic", "digits"]
    assert [tree.nodes[tree.leaf_of[i]].name for i in (0, 26)] == ["Latin capital A", "Latin small a"]


def test_shipped_imagenet_tree_has_the_1000_classes_in_standard_order():
    tree = load_tree("imagenet", 1000)
    assert tree.num_classes == 1000 and tree.nodes[tree.root].name == "entity"
    assert tree.leaf_of[0] == "n01440764" and tree.nodes["n01440764"].name == "tench"
    assert tree.leaf_of[999] == "n15075141"  # toilet tissue
    assert 10 <= tree.max_depth <= 16
    assert all(len(tree.children(n.id)) != 1 for n in tree.walk())  # single-child chains collapsed


def test_shipped_cifar_trees():
    cifar100 = load_tree("cifar100", 100)
    assert len(cifar100.children(cifar100.root)) == 20
    assert all(len(cifar100.children(c)) == 5 for c in cifar100.children(cifar100.root))
    assert cifar100.nodes[cifar100.leaf_of[0]].name == "apple"
    cifar10 = load_tree("cifar10", 10)
    assert cifar10.children(cifar10.root) == ["vehicle", "animal"]
    assert cifar10.nodes[cifar10.leaf_of[3]].name == "cat"


def test_cifar_builders_reproduce_the_shipped_files():
    from diffclass.hierarchy.builders import cifar10_tree, cifar100_tree

    assert cifar100_tree().to_dict() == load_tree("cifar100").to_dict()
    assert cifar10_tree().to_dict() == load_tree("cifar10").to_dict()


def test_induced_tree_groups_every_class_once():
    import numpy as np

    from diffclass.hierarchy.induce import cluster_levels, induce_tree, tree_from_groups
    from tests.conftest import tiny_backbone

    # two obvious clusters of classes
    features = np.array([[0, 0], [0, 0.1], [0.1, 0], [5, 5], [5, 5.1], [5.1, 5]], dtype=float)
    levels = cluster_levels(features, [2])
    assert sorted(map(sorted, levels[0])) == [[0, 1, 2], [3, 4, 5]]
    tree = tree_from_groups(levels, list("abcdef"))
    assert tree.num_classes == 6 and sorted(tree.leaves_under(tree.root)) == list(range(6))
    assert sorted(sorted(tree.leaves_under(n)) for n in tree.children(tree.root)) == [[0, 1, 2], [3, 4, 5]]
    induced = induce_tree(tiny_backbone(classes=[str(i) for i in range(12)]))
    assert sorted(induced.leaves_under(induced.root)) == list(range(12)) and induced.max_depth >= 2


def test_a_tree_deeper_than_the_recursion_limit_validates_shows_and_descends(tmp_path, monkeypatch, capsys):
    import sys

    from diffclass.hierarchy import LabelTree, TreeNode
    from tests.conftest import run_cli

    depth = sys.getrecursionlimit() + 500
    nodes = [TreeNode(f"n{i}", f"n{i}", [f"n{i + 1}", f"leaf{i}"]) for i in range(depth)]
    nodes += [TreeNode(f"leaf{i}", f"leaf{i}", class_index=i) for i in range(depth)]
    nodes.append(TreeNode(f"n{depth}", "last", class_index=depth))
    tree = LabelTree(nodes, depth + 1)
    assert tree.max_depth == depth and len(tree.leaves_under("n0")) == depth + 1
    frontier = tree.frontier(depth - 1)
    assert frontier[0] == f"n{depth - 1}" and frontier[-1] == "leaf0" and len(frontier) == depth
    assert len(tree.internal_nodes()) == depth - 1
    tree.save(tmp_path / "deep.json")
    for command in (["tree", "validate", tmp_path / "deep.json"], ["tree", "show", tmp_path / "deep.json"]):
        code, out, err = run_cli(monkeypatch, capsys, *command)
        assert code == 0, err
