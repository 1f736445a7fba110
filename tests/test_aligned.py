"""`aligned(d;then)`: each class scored at the image's best whole-pixel alignment, on the image's own noise."""

import pytest
import torch

from diffclass.data.corruptions import translate
from diffclass.errors import DiffclassError


@pytest.mark.parametrize("prior", [0.0, 0.3])
def test_each_class_is_read_at_the_offset_where_it_fits_best(classifier, images, prior):
    spec = f"aligned(d=1;prior={prior};then=exhaustive(n=4))"
    decisions = classifier.classify(images[:3], spec, image_ids=list("abc"))
    for image, image_id, decision in zip(images[:3], "abc", decisions):
        by_offset = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):  # each copy on its own, under the image's id: the same noise for every offset
                copy = classifier.classify(translate(image, dy, dx)[None], "exhaustive(n=4)", image_ids=[image_id])[0]
                by_offset.append({c: e * (1 + prior * (abs(dy) + abs(dx))) for c, e in copy.scores.items()})
        best = {c: min(scores[c] for scores in by_offset) for c in range(len(classifier.class_names))}
        assert decision.scores == pytest.approx(best, rel=1e-6)  # float32 passes of other sizes
        assert decision.ranking == sorted(best, key=lambda c: (best[c], c))
        assert decision.nfe == 9 * 4 * len(classifier.class_names)


def test_a_moved_image_is_aligned_back_and_the_name_keeps_its_stage(classifier, images):
    strategy = classifier.strategy("aligned(d=1;then=adaptive(keep=2,1;n=2,4))")
    assert strategy.name == "aligned(d=1;then=adaptive(keep=2,1;n=2,4))"
    assert (
        classifier.strategy("aligned(prior=0.05;then=exhaustive(n=4))").name
        == "aligned(d=1;prior=0.05;then=exhaustive(n=4))"
    )
    image = torch.full_like(images[0], -1.0)
    image[:, 2:6, 2:6] = images[0][:, 2:6, 2:6]  # content away from the border, so a move is undone exactly
    moved = translate(image, 1, -1)
    assert torch.equal(translate(moved, -1, 1), image)
    plain = classifier.classify(image[None], "exhaustive(n=4)", image_ids=["x"])[0]
    back = classifier.classify(moved[None], "aligned(d=1;then=exhaustive(n=4))", image_ids=["x"])[0]
    assert all(back.scores[c] <= plain.scores[c] * (1 + 1e-6) for c in plain.scores)


def test_aligned_refuses_what_it_cannot_do(classifier):
    with pytest.raises(DiffclassError, match=r"d=4 must be in \[1, 3\]"):
        classifier.strategy("aligned(d=4)")
    with pytest.raises(DiffclassError, match="takes a diffusion strategy"):
        classifier.strategy("aligned(then=prefilter(by=digits))")
    point = dict(spec="prefilter(by=digits;k=2;then=exhaustive(n=3))", top1=1.0, nfe_per_image=7)
    classifier.info.front = dict(weights=classifier.weights, points=[point])  # auto resolves to a composition
    with pytest.raises(DiffclassError, match="name one instead"):
        classifier.strategy("aligned(then=auto)")
