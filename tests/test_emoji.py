import hashlib
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from diffclass.data import load_dataset
from diffclass.data.emoji import (
    EMOJI_DIGEST,
    LINE_ART_STYLES,
    TEST_STYLES,
    TRAIN_STYLES,
    emoji_array,
    emoji_classes,
)
from diffclass.hierarchy import load_tree

ROOT = Path(__file__).resolve().parents[1]


def test_emoji_split_is_by_style_with_every_class_in_each():
    train, test = load_dataset("emoji", "train"), load_dataset("emoji", "test")
    assert len(train.class_names) == 227 and train.class_names == test.class_names
    assert len(train) == 7 * 227 and len(test) == 681
    assert train.images.shape[1:] == (3, 32, 32) and test.images.dtype == torch.float32
    assert set(train.groups) == set(TRAIN_STYLES) and set(test.groups) == set(TEST_STYLES)
    assert set(LINE_ART_STYLES) < set(TEST_STYLES) and "openmoji" in TEST_STYLES
    for split in (train, test):  # every class once per style
        assert Counter(zip(split.groups, split.labels.tolist())).most_common(1)[0][1] == 1
        assert -1 <= split.images.min() and split.images.max() <= 1
    assert len(set(train.ids) | set(test.ids)) == len(train) + len(test)


def test_emoji_background_is_mid_grey_without_alpha_leaking():
    array = emoji_array()
    corners = array[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]  # [styles, classes, 4, 3]
    assert (abs(corners.astype(int) - 128) <= 2).mean() > 0.95  # icons rarely touch their corners
    assert array.std(axis=(2, 3, 4)).min() > 5  # no blank icon
    assert hashlib.sha256(array.tobytes()).hexdigest() == EMOJI_DIGEST


def test_emoji_tree_is_unicode_group_subgroup_emoji():
    tree = load_tree("emoji", 227)
    root = tree.nodes[tree.root]
    assert len(root.children) == 5 and tree.max_depth == 3
    subgroups = [c for g in root.children for c in tree.nodes[g].children]
    assert len(subgroups) == 40
    classes = emoji_classes()
    for index in (0, 100, 226):
        leaf = tree.leaf_of[index]
        assert leaf.startswith(f"{classes[index].group}/{classes[index].subgroup}/")


@pytest.mark.skipif(not shutil.which("npm"), reason="rebuilding the emoji array needs npm for the pinned artwork")
def test_build_script_reproduces_the_shipped_array(tmp_path):
    pytest.importorskip("cairosvg", reason="rebuilding the emoji array needs cairosvg (pip install cairosvg)")
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_emoji.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if run.returncode != 0 and "npm" in run.stderr and "ERR" in run.stderr:
        pytest.skip("the npm registry is unreachable: cannot fetch the pinned artwork packages")
    assert run.returncode == 0 and "same" in run.stdout, run.stdout + run.stderr[-2000:]


def test_the_shipped_emoji_models_classify_a_test_image_offline():
    import diffclass

    clf = diffclass.load("emoji")
    assert clf.tree is not None and clf.info.training["held_out"] == ["noto"]
    test = load_dataset("emoji", "test").subset(range(2))
    decisions = clf.classify(test.images, "prefilter(by=plain-emoji;k=5;then=exhaustive(n=2))", test.ids)
    for d in decisions:
        assert sorted(d.ranking) == list(range(227)) and d.nfe == 5 * 2 + 1
    held = load_dataset("emoji", "train").split_held_out(["noto"])[1].subset(range(40))
    plain = diffclass.load("plain-emoji").evaluate(held, show_progress=False)
    assert plain.top1 > 0.5  # the twin recognises most drawings of the vendor both models held out
