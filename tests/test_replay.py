"""An error table replays strategies exactly as they run live."""

import pytest
import torch

from diffclass.data.base import ImageDataset
from diffclass.errors import DiffclassError
from diffclass.replay import ErrorTable
from tests.conftest import tree_classifier


@pytest.fixture(scope="module")
def dataset():
    images = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    return ImageDataset("toy", images, labels, ["ant", "bee", "cat", "dog", "eel"], [f"im{i}" for i in range(6)])


@pytest.fixture(scope="module")
def classifier_and_table(dataset):
    """One tiny tree model and its full table (a beam may visit every timestep of the grid), shared by the tests."""
    clf = tree_classifier()
    table = ErrorTable.compute(clf, dataset, range(len(dataset)), slots=clf.scorer.grid.size, progress=False)
    return clf, table


@pytest.mark.parametrize(
    "spec",
    [
        "exhaustive(n=4)",
        "adaptive(keep=3,2,1;n=1,3,8)",
        "hdc(rule=top-fraction;K=0.5;slots=2;final=adaptive(keep=2,1;n=2,6))",
        "hdc(rule=within-std;m=1;slots=3;final=exhaustive(n=5))",
        "beam(b=2;t_s=2;start=middle-out)",
        "hdc+beam(rule=within-std;m=1;slots=2;b=2;t_s=2)",
        "beam(b=2;t_s=3;start=middle-out;n=3)",
        "hdc+beam(rule=within-std;m=1;slots=2;b=2;t_s=5;n=4)",
        "sequential(p=0.2;min=3;max=20;step=2)",
        "hdc(rule=within-std;m=1;slots=2;final=sequential(p=0.3;min=2;max=12))",
    ],
)
def test_replay_ranks_and_counts_like_a_live_run(dataset, classifier_and_table, spec, tmp_path):
    clf, table = classifier_and_table
    assert table.errors.shape == (6, 5 + 4, clf.scorer.grid.size)  # 5 classes, the tree's 4 internal nodes
    table.save(tmp_path / "table.safetensors")
    loaded = ErrorTable.load(tmp_path / "table.safetensors")
    assert loaded.candidates == table.candidates and torch.equal(loaded.errors, table.errors)

    live = clf.classify(dataset.images, spec, dataset.ids)
    outcomes, nfes = loaded.replay(clf.strategy(spec))
    assert [o.ranking for o in outcomes] == [d.ranking for d in live]
    assert nfes == [d.nfe for d in live]
    top1, mean_nfe = loaded.top1(clf.strategy(spec))
    assert top1 == sum(d.label == int(y) for d, y in zip(live, dataset.labels)) / 6
    assert mean_nfe == sum(nfes) / 6
    run = loaded.correct(clf.strategy(spec))
    assert run.predictions == [d.label for d in live]
    assert run.top5 == sum(int(y) in d.ranking[:5] for d, y in zip(live, dataset.labels)) / 6


def test_a_beam_on_n_slots_visits_only_those_and_fits_a_table_of_them(dataset):
    clf = tree_classifier()
    table = ErrorTable.compute(clf, dataset, range(len(dataset)), slots=3, progress=False)
    with pytest.raises(DiffclassError, match="holds 3 slots"):
        table.replay(clf.strategy("beam(b=2;t_s=9)"))  # the whole grid, in timestep order
    outcomes, nfes = table.replay(clf.strategy("beam(b=2;t_s=9;n=3)"))
    assert all(sorted(o.ranking) == [0, 1, 2, 3, 4] for o in outcomes)
    assert all(n == 5 + 3 + 3 for n in nfes)  # every class, then the beam's ceil(5/2) on each of the two other slots
    assert clf.strategy("beam(n=3)").name == "beam(b=2;t_s=8;N=1;start=clean-first;n=3)"
    with pytest.raises(DiffclassError, match="beam n=99 must be between 1 and the grid's"):
        clf.strategy("beam(n=99)")


def test_tables_of_parts_join_into_the_table_of_the_whole(dataset, classifier_and_table):
    clf, whole = classifier_and_table
    first = ErrorTable.compute(clf, dataset, range(4), slots=whole.slots, progress=False)
    rest = ErrorTable.compute(clf, dataset, range(4, 6), slots=whole.slots, progress=False)
    joined = ErrorTable.concat([first, rest])
    assert joined.image_ids == whole.image_ids and joined.candidates == whole.candidates
    assert torch.equal(joined.labels, whole.labels) and torch.allclose(joined.errors, whole.errors)
    with pytest.raises(DiffclassError, match="share images"):
        ErrorTable.concat([first, first])
    fewer = ErrorTable.compute(clf, dataset, range(4, 6), slots=2, progress=False)
    with pytest.raises(DiffclassError, match="different candidates or slots"):
        ErrorTable.concat([first, fewer])


def test_replay_refuses_a_strategy_that_needs_more_slots_than_stored(dataset):
    clf = tree_classifier()
    table = ErrorTable.compute(clf, dataset, range(2), slots=4, progress=False)
    with pytest.raises(DiffclassError, match="holds 4 slots; the strategy asks for slot 4"):
        table.replay(clf.strategy("exhaustive(n=6)"))


def test_replay_refuses_aligned_alone_or_behind_a_prefilter(dataset):
    clf = tree_classifier()
    table = ErrorTable.compute(clf, dataset, range(2), slots=4, progress=False)
    with pytest.raises(DiffclassError, match="error table does not hold"):
        clf.replay(table, strategy="aligned(d=1;then=exhaustive(n=4))")
    with pytest.raises(DiffclassError, match="error table does not hold"):
        table.replay(clf.strategy("aligned(d=1;then=exhaustive(n=4))"))


def test_a_damaged_table_file_is_one_clear_error(tmp_path):
    path = tmp_path / "table.safetensors"
    path.write_bytes(b"not a table")
    with pytest.raises(DiffclassError, match="is not an error table"):
        ErrorTable.load(path)


def test_a_cached_table_is_read_back_until_the_weights_change(model_dir, tmp_path):
    import diffclass
    from diffclass.data import load_dataset

    clf = diffclass.load(model_dir)
    data = load_dataset("digits", "test", 8)
    first = ErrorTable.cached(tmp_path / "cache", clf, data, range(3), slots=2, progress=False)
    calls = clf.scorer.network_calls
    again = ErrorTable.cached(tmp_path / "cache", clf, data, range(3), slots=2, progress=False)
    assert clf.scorer.network_calls == calls and torch.equal(again.errors, first.errors)
    assert len(list((tmp_path / "cache").iterdir())) == 1
    clf.backbone.unet.conv_out.bias.data += 1.0  # "retrained" into the same folder
    clf.backbone.save_pretrained(model_dir)
    retrained = diffclass.load(model_dir)
    fresh = ErrorTable.cached(tmp_path / "cache", retrained, data, range(3), slots=2, progress=False)
    assert retrained.scorer.network_calls > 0 and not torch.equal(fresh.errors, first.errors)
    assert len(list((tmp_path / "cache").iterdir())) == 2
