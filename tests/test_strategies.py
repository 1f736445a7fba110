import pytest
import torch

from diffclass.data.base import ImageDataset
from diffclass.errors import DiffclassError
from diffclass.strategies import Adaptive, Exhaustive, Request, make_strategy
from diffclass.strategies.adaptive import default_stages
from tests.conftest import CallRecorder, ctx, play


def test_exhaustive_ranks_by_mean_error():
    outcome, requests = play(Exhaustive(n=5), [0, 1, 2, 3], lambda c, s: [3.0, 1.0, 2.0, 0.5][c] + 0.01 * s)
    assert outcome.ranking == [3, 1, 2, 0]
    assert requests == [Request((0, 1, 2, 3), (0, 1, 2, 3, 4))]


def test_adaptive_stages_nest_and_keep_the_best():
    # class 4 looks best on the first 2 slots only; class 1 is best on average over 8
    def error(c, s):
        return {4: 0.0 if s < 2 else 5.0, 1: 1.0}.get(c, 2.0 + c)

    outcome, requests = play(Adaptive(keep=[2, 1], n=[2, 8]), [0, 1, 2, 3, 4], error)
    assert requests[0] == Request((0, 1, 2, 3, 4), (0, 1))
    assert set(requests[1].candidates) == {4, 1} and requests[1].slots == tuple(range(8))
    assert outcome.ranking[:2] == [1, 4] and outcome.ranking[2:] == [0, 2, 3]
    assert [s["kept"] for s in outcome.trace] == [2, 1]


def test_adaptive_nfe_counts_only_new_slots(classifier, images):
    recorder = CallRecorder(classifier.backbone)
    (decision,) = classifier.classify(images[:1], "adaptive(keep=2,1;n=3,10)")
    assert decision.nfe == 5 * 3 + 2 * (10 - 3) == len(recorder.triples)


def test_adaptive_with_everyone_kept_equals_exhaustive(classifier, images):
    full = classifier.classify(images, "adaptive(keep=5,5;n=2,6)")
    exhaustive = classifier.classify(images, "exhaustive(n=6)")
    assert [d.ranking for d in full] == [d.ranking for d in exhaustive]


@pytest.mark.parametrize("spec", ["exhaustive(n=6)", "adaptive(keep=2,1;n=3,12)"])
def test_same_seed_same_predictions_whatever_the_batch_size(backbone, images, spec):
    from diffclass.classifier import Classifier

    runs = [Classifier(backbone, batch_size=b, seed=5).classify(images, spec) for b in (1, 7, 64)]
    assert [d.ranking for d in runs[0]] == [d.ranking for d in runs[1]] == [d.ranking for d in runs[2]]
    other_seed = Classifier(backbone, seed=6).classify(images, spec)
    assert [d.scores for d in other_seed] != [d.scores for d in runs[0]]


@pytest.mark.parametrize("classes", [5, 10, 62, 100, 1000])
def test_default_stages_scale_with_classes(classes):
    keep, n = default_stages(classes)
    assert keep[-1] == 1 and all(k < classes for k in keep) and n == sorted(n)
    Adaptive(keep, n)  # valid
    cost = classes * n[0] + sum(k * (b - a) for k, a, b in zip(keep, n, n[1:]))
    assert cost <= classes * n[-1] / 2  # at least twice cheaper than exhaustive at the same final n


def test_names_show_resolved_options():
    assert make_strategy("exhaustive(n=50)", ctx(10)).name == "exhaustive(n=50)"
    assert make_strategy("adaptive(keep=10,1;n=10,100)", ctx(100)).name == "adaptive(keep=10,1;n=10,100)"
    assert make_strategy("adaptive", ctx(10)).name.startswith("adaptive(keep=")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("beam-me-up", "unknown strategy"),
        ("exhaustive(m=3)", "unknown option"),
        ("adaptive(keep=2)", "needs both"),
        ("adaptive(keep=2,1;n=8)", "as many keep"),
        ("adaptive(keep=2,1;n=8,4)", "increasing"),
        ("adaptive(keep=x;n=8)", "option keep='x' must be an integer"),
        ("exhaustive(n=0)", r"option n=0 must be in \[1, 20000\]"),
        ("exhaustive(n=3", "malformed"),
    ],
)
def test_bad_specs_say_why(spec, message):
    with pytest.raises(DiffclassError, match=message):
        make_strategy(spec, ctx(10))


BATCH_SPECS = [
    "exhaustive(n=4)",
    "adaptive(keep=3,1;n=2,4)",
    "sequential(p=0.1;min=2;max=8;step=2)",
    "beam(b=2;t_s=2;N=1;start=middle-out)",
    "beam(b=2;t_s=2;N=1;start=noisy-first)",
    "hdc(rule=top-fraction;K=0.5;slots=2)",
    "hdc(rule=within-std;m=1;slots=2;final=beam)",
    "aligned(d=1;then=adaptive(keep=3,1;n=2,4))",
]


@pytest.mark.parametrize("spec", BATCH_SPECS)
def test_every_strategy_gives_the_same_records_at_batch_sizes_1_7_and_256(spec):
    """The engine promises that an image's answer depends on the seed and its id, not on what it is batched with."""
    from diffclass.classifier import Classifier
    from diffclass.evaluation import evaluate
    from tests.conftest import tree_classifier

    base = tree_classifier()
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(9, 1, 8, 8, generator=gen) * 2 - 1
    data = ImageDataset("toy", images, torch.arange(9) % 5, base.class_names, [f"toy/{i}" for i in range(9)])
    runs = []
    for batch_size in (1, 7, 256):
        clf = Classifier(base.backbone, batch_size=batch_size)
        records = evaluate(clf, data, spec, show_progress=False).records
        runs.append([(r.id, r.prediction, r.top5, r.nfe) for r in records])
    assert runs[0] == runs[1] == runs[2], spec
