"""`registered(prior;then)`: each class also read with the image's ink moved to where its training images put
theirs (the model's anchors), on the image's own noise; and the anchors themselves (`diffclass.placement`)."""

import json

import pytest
import torch

from diffclass.data.corruptions import translate
from diffclass.errors import DiffclassError
from diffclass.hub import ModelInfo
from diffclass.placement import fit_anchors, ink_centres, registration_offset
from tests.conftest import run_cli


def blob(y: int, x: int, size: int = 8) -> torch.Tensor:
    """A bright 2x2 square on a dark background, its top-left corner at (y, x)."""
    image = torch.full((1, size, size), -1.0)
    image[:, y : y + 2, x : x + 2] = 1.0
    return image


def test_the_ink_centre_follows_a_whole_pixel_move_and_shrugs_off_noise():
    image = blob(2, 3)
    assert ink_centres(image[None])[0].tolist() == [2.5, 3.5]
    assert ink_centres(translate(image, 2, -1)[None])[0].tolist() == [4.5, 2.5]
    noisy = (image + 0.3 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    assert (ink_centres(noisy[None])[0] - torch.tensor([2.5, 3.5])).abs().max() < 0.5
    assert ink_centres(torch.full((1, 1, 8, 8), 0.3)).tolist() == [[3.5, 3.5]]  # nothing stands out: the middle
    colour = torch.full((3, 8, 8), 1.0)  # dark ink on white, in colour
    colour[:, 5:7, 1:3] = torch.tensor([-1.0, 0.0, -1.0])[:, None, None]
    assert ink_centres(colour[None])[0].tolist() == pytest.approx([5.5, 1.5])


def test_anchors_are_each_class_mean_ink_centre_and_need_every_class():
    images = torch.stack([blob(1, 1), blob(3, 1), blob(5, 5)])
    assert fit_anchors(images, [0, 0, 1], 2) == [[2.5, 1.5], [5.5, 5.5]]
    with pytest.raises(DiffclassError, match="none of class 2"):
        fit_anchors(images, [0, 0, 1], 3)
    assert registration_offset((5.5, 5.5), torch.tensor([2.4, 3.6]), 8) == (3, 2)
    assert registration_offset((7.0, 0.0), torch.tensor([0.0, 7.0]), 4) == (4, -4)


def with_anchors(classifier, anchors):
    classifier.info.anchors = anchors
    return classifier


def test_each_class_is_read_as_it_is_or_moved_to_its_anchor_whichever_fits_better(classifier):
    image = blob(3, 3)  # ink centre (3.5, 3.5)
    anchors = [[3.5, 3.5], [1.5, 3.5], [3.5, 5.5], [5.5, 1.5], [3.7, 3.4]]  # moves 0, (-2, 0), (0, 2), (2, -2), 0
    moves = [(0, 0), (-2, 0), (0, 2), (2, -2), (0, 0)]
    prior = 0.1
    clf = with_anchors(classifier, anchors)
    decision = clf.classify(image[None], f"registered(prior={prior};then=exhaustive(n=4))", image_ids=["x"])[0]
    as_is = clf.classify(image[None], "exhaustive(n=4)", image_ids=["x"])[0].scores
    for c, (dy, dx) in enumerate(moves):
        moved = clf.classify(translate(image, dy, dx)[None], "exhaustive(n=4)", image_ids=["x"])[0].scores
        expected = min(as_is[c], moved[c] * (1 + prior * (abs(dy) + abs(dx))))
        assert decision.scores[c] == pytest.approx(expected, rel=1e-6)
    assert decision.nfe == 4 * (5 + 3)  # every class as it is, and the three that move once more


def test_slack_also_reads_each_class_a_pixel_above_and_below_its_move(classifier):
    image = blob(3, 3)  # ink centre (3.5, 3.5)
    anchors = [[3.5, 3.5], [1.5, 3.5], [3.5, 5.5], [5.5, 1.5], [3.7, 3.4]]
    moves = [(0, 0), (-2, 0), (0, 2), (2, -2), (0, 0)]
    prior = 0.1
    clf = with_anchors(classifier, anchors)
    spec = f"registered(prior={prior};slack=1;then=exhaustive(n=4))"
    assert clf.strategy(spec).name == spec
    decision = clf.classify(image[None], spec, image_ids=["x"])[0]

    def read(dy, dx, c):
        return clf.classify(translate(image, dy, dx)[None], "exhaustive(n=4)", image_ids=["x"])[0].scores[c] * (
            1 + prior * (abs(dy) + abs(dx))
        )

    for c, (dy, dx) in enumerate(moves):
        expected = min(read(0, 0, c), *(read(dy + j, dx, c) for j in (-1, 0, 1)))
        assert decision.scores[c] == pytest.approx(expected, rel=1e-6)
    reads = sum(len({(0, 0), *((dy + j, dx) for j in (-1, 0, 1))}) for dy, dx in moves)
    assert decision.nfe == 4 * reads  # a class-conditional network: a call per class and distinct reading of it
    with pytest.raises(DiffclassError, match="slack"):
        clf.strategy("registered(slack=3;then=exhaustive(n=4))")


def test_a_centred_crop_is_read_where_its_class_expects_it(classifier):
    """Registered with no prior, a moved image reads each class exactly as the image where its anchor is."""
    image = blob(4, 2)
    anchors = [[4.5, 2.5]] * 5
    clf = with_anchors(classifier, anchors)
    moved = translate(image, -2, 2)
    plain = clf.classify(image[None], "exhaustive(n=4)", image_ids=["x"])[0]
    back = clf.classify(moved[None], "registered(prior=0;then=exhaustive(n=4))", image_ids=["x"])[0]
    assert all(back.scores[c] <= plain.scores[c] * (1 + 1e-6) for c in plain.scores)


def test_registered_behind_a_tree_and_a_prefilter_and_its_name(classifier, model_dir):
    from diffclass.hierarchy import LabelTree, TreeNode
    from diffclass.loading import load
    from diffclass.strategies.registered import class_anchors

    tree = LabelTree(
        [
            TreeNode("root", "root", ["a", "b"]),
            TreeNode("a", "a", ["l0", "l1"]),
            TreeNode("b", "b", ["l2", "l3", "l4"]),
            *[TreeNode(f"l{i}", f"l{i}", class_index=i) for i in range(5)],
        ]
    )
    anchors = class_anchors([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0], [3.0, 3.0], [6.0, 6.0]], tree)
    assert anchors["a"] == (2.0, 3.0) and anchors["b"] == (3.0, 3.0) and anchors[4] == (6.0, 6.0)
    clf = with_anchors(classifier, [[3.5, 3.5]] * 5)
    assert clf.strategy("registered(then=exhaustive(n=4))").name == "registered(prior=0.05;then=exhaustive(n=4))"
    model = load(model_dir)
    model.info.anchors = [[3.5, 3.5]] * 10
    spec = "prefilter(by=digits;k=3;then=registered(then=exhaustive(n=2)))"
    assert model.strategy(spec).then.name == "registered(prior=0.05;then=exhaustive(n=2))"


def test_registered_refuses_what_it_cannot_do(classifier):
    with pytest.raises(DiffclassError, match="fit-anchors"):
        classifier.strategy("registered(then=exhaustive(n=4))")
    clf = with_anchors(classifier, [[3.5, 3.5]] * 5)
    with pytest.raises(DiffclassError, match="takes a diffusion strategy"):
        clf.strategy("registered(then=aligned(d=1))")
    with pytest.raises(DiffclassError, match="prior"):
        clf.strategy("registered(prior=-1)")


@pytest.mark.parametrize(
    "anchors", [[[1.0, 2.0]], [[1.0, 2.0, 3.0]] * 10, [[1.0, 99.0]] * 10, [["a", 1.0]] * 10, {"0": [1, 2]}]
)
def test_malformed_anchors_are_one_line(model_dir, anchors):
    info = json.loads((model_dir / "diffclass.json").read_text())
    info["anchors"] = anchors
    (model_dir / "diffclass.json").write_text(json.dumps(info))
    with pytest.raises(DiffclassError, match="anchors must be null or one"):
        ModelInfo.load(model_dir)


def test_fit_anchors_stores_the_training_datas_anchors(monkeypatch, capsys, model_dir, tmp_path):
    from diffclass.data import load_dataset

    code, out, _ = run_cli(monkeypatch, capsys, "fit-anchors", "--model", str(model_dir))
    assert code == 0 and "anchors of 10 classes" in out
    data = load_dataset("digits", "train", 8, 1)
    assert ModelInfo.load(model_dir).anchors == fit_anchors(data.images, data.labels, 10)
    code, out, err = run_cli(monkeypatch, capsys, "fit-anchors", "--model", "digits")
    assert code != 0 and "embedded" in out + err
    code, out, err = run_cli(monkeypatch, capsys, "fit-anchors", "--model", str(model_dir), "--images-from", "glyphs")
    assert code != 0 and "other classes" in out + err and "Traceback" not in out + err


def test_records_made_with_anchors_are_redone_when_the_anchors_change(classifier, tmp_path, caplog):
    """`fit-anchors` changes the anchors under the same weights: a record store of a registered run no longer
    matches, one of a strategy that never reads them still does."""
    from diffclass.evaluation import run_identity
    from diffclass.records import RecordStore

    registered, plain = "prefilter(by=x;k=2;then=registered(prior=0.05;then=exhaustive(n=4)))", "exhaustive(n=4)"
    before = {s: run_identity(with_anchors(classifier, [[3.5, 3.5]] * 5), s) for s in (registered, plain)}
    after = {s: run_identity(with_anchors(classifier, [[2.5, 3.5]] * 5), s) for s in (registered, plain)}
    assert before[plain] == after[plain]
    assert before[registered] != after[registered]
    with RecordStore(tmp_path / "out", before[registered]):
        pass
    with caplog.at_level("INFO", logger="diffclass.records"), RecordStore(tmp_path / "out", after[registered]):
        pass
    assert "made with other options (anchors)" in caplog.text
