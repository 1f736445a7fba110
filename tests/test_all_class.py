"""All-class students: one network call predicts every class's noise; distilled from a class-conditional teacher."""

import copy
import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

import diffclass
from diffclass.backbones.all_class import AllClassUNet
from diffclass.backbones.base import q_sample
from diffclass.classifier import Classifier
from diffclass.data import load_dataset
from diffclass.distillation import DistillConfig, distill
from diffclass.errors import DiffclassError
from diffclass.hub import ModelInfo
from diffclass.replay import ErrorTable
from tests.conftest import run_cli, tiny_backbone


@pytest.fixture
def student(backbone):
    return AllClassUNet.from_teacher(backbone)


def test_the_student_starts_as_its_teacher_under_the_mean_class(backbone, student):
    x, t = torch.randn(3, 1, 8, 8), torch.tensor([10, 200, 600])
    mean_class = copy.deepcopy(backbone)
    weight = mean_class.unet.class_embedding.weight
    weight.data[0] = weight.data[:5].mean(0)
    expected = mean_class.predict_noise(x, t, torch.zeros(3, dtype=torch.long))
    heads = student.predict_all(x, t)
    assert heads.shape == (3, 5, 1, 8, 8)
    assert torch.allclose(heads, expected[:, None].expand_as(heads), atol=1e-5)


def test_one_call_fills_every_class_of_a_slot(student, images):
    rows = []
    original = student.predict_all
    student.predict_all = lambda x_t, t: rows.append(len(x_t)) or original(x_t, t)
    clf = Classifier(student, batch_size=64)
    memo = clf.scorer.start(images[:2], ["a", "b"])
    clf.scorer.compute([(m, [0, 3], range(4)) for m in memo])  # asks for two classes, gets all five
    assert sum(rows) == 8 and [m.nfe for m in memo] == [4, 4]
    assert set(memo[0].memo) == {(c, s) for c in range(5) for s in range(4)}
    eps = memo[1].noise(2)
    t = clf.scorer.grid.timestep(2)
    x_t = q_sample(memo[1].x0[None], eps[None], student.alphas_cumprod[[t]])
    direct = F.mse_loss(original(x_t, torch.tensor([t]))[0, 4], eps).item()
    assert memo[1].memo[(4, 2)] == pytest.approx(direct, rel=1e-5)
    decisions = clf.classify(images[:3], strategy="exhaustive(n=4)")
    assert [d.nfe for d in decisions] == [4, 4, 4]  # an NFE is a call: slots, not classes x slots


def test_an_all_class_model_runs_k_times_as_many_images_in_lockstep_with_the_same_results(backbone, student, images):
    head = student.unet.conv_out.weight  # heads apart, so that no two classes tie
    head.data += 0.1 * torch.randn(head.shape, generator=torch.Generator().manual_seed(0))
    teacher, clf = Classifier(backbone, batch_size=8), Classifier(student, batch_size=8)
    assert (clf.images_per_pass(), teacher.images_per_pass()) == (32, 32 // 5)  # a row per (image, slot), not per class
    spec, ids = "adaptive(keep=2,1;n=2,4)", [str(i) for i in range(9)]
    together = clf.classify(images, spec, ids)
    alone = [clf.classify(images[i : i + 1], spec, ids[i : i + 1])[0] for i in range(9)]
    assert [(d.label, d.nfe) for d in together] == [(d.label, d.nfe) for d in alone]
    for a, b in zip(together, alone):  # the same errors, up to float noise from the batch composition
        assert [c for c, _ in a.top(5)] == [c for c, _ in b.top(5)]
        assert [p for _, p in a.top(5)] == pytest.approx([p for _, p in b.top(5)], abs=1e-6)


def test_replay_counts_a_slot_once_for_every_class(student, images):
    from diffclass.data.base import ImageDataset

    clf = Classifier(student, batch_size=64)
    data = ImageDataset("x", images[:4], torch.tensor([0, 1, 2, 3]), [str(i) for i in range(5)], list("abcd"))
    table = ErrorTable.compute(clf, data, slots=8, progress=False)
    live = clf.classify(images[:4], strategy="adaptive(keep=2,1;n=2,8)", image_ids=data.ids)
    outcomes, nfes = table.replay(clf.strategy("adaptive(keep=2,1;n=2,8)"))
    assert nfes == [d.nfe for d in live] == [8] * 4
    assert [o.ranking[0] for o in outcomes] == [d.label for d in live]


def test_tree_nodes_score_as_their_best_or_mean_leaf_on_the_same_call(student, images):
    from tests.conftest import animal_tree

    head = student.unet.conv_out.weight  # heads apart, so that node scores differ between the two rules
    head.data += 0.1 * torch.randn(head.shape, generator=torch.Generator().manual_seed(0))
    tree, clf = animal_tree(), Classifier(student, batch_size=64)
    with pytest.raises(DiffclassError, match="give it a tree"):
        student.condition(["pets"])
    with pytest.raises(DiffclassError, match="leaf-min or leaf-mean only, not 'ancestor'"):
        clf.use_tree(tree, "ancestor")
    for mode, reduce in (("leaf-min", min), ("leaf-mean", lambda v: sum(v) / len(v))):
        assert clf.use_tree(tree, mode) == mode
        memo = clf.scorer.start(images[:1], ["a"])[0]
        clf.scorer.compute([(memo, ["pets", "wild", "lone"], range(3))])  # nodes only: one call per slot
        assert memo.nfe == 3
        for node, leaves in (("pets", [2, 3]), ("wild", [1, 4]), ("lone", [0]), ("chain", [0])):
            for s in range(3):
                assert memo.memo[(node, s)] == pytest.approx(reduce([memo.memo[(c, s)] for c in leaves]), rel=1e-6)
    assert memo.memo[("pets", 0)] != pytest.approx(min(memo.memo[(2, 0)], memo.memo[(3, 0)]))  # mean, not min


def test_hdc_on_an_all_class_model_costs_one_call_per_slot_whatever_it_scores(student, images):
    from tests.conftest import animal_tree

    clf = Classifier(student, batch_size=64)
    clf.use_tree(animal_tree())
    hdc = clf.classify(images[:4], strategy="hdc(slots=2;final=exhaustive(n=6))")
    flat = clf.classify(images[:4], strategy="exhaustive(n=6)")
    assert [d.nfe for d in hdc] == [d.nfe for d in flat] == [6] * 4  # the descent's 2 slots are among the 6


def test_a_student_inherits_its_teachers_tree_and_descends_it_out_of_the_box():
    from tests.conftest import tree_classifier

    teacher = tree_classifier().backbone
    student = AllClassUNet.from_teacher(teacher)
    assert student.info.tree == teacher.info.tree and set(student._node_leaves) == {"pets", "wild", "lone", "chain"}
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    assert [d.nfe for d in Classifier(student).classify(images, strategy="hdc(slots=2;final=exhaustive(n=4))")] == [
        4,
        4,
    ]


def test_distillation_moves_every_head_towards_its_teachers_class(model_dir, tmp_path):
    info = ModelInfo.load(model_dir)
    info.anchors = [[3.5, 0.5 * c] for c in range(10)]
    info.save(model_dir)
    config = DistillConfig(steps=80, batch_size=16, classes_per_image=10, lr=3e-3, warmup_steps=5, ema_decay=0.9)
    trained = distill(model_dir, tmp_path / "student", config, show_progress=False)
    teacher = diffclass.load(model_dir).backbone
    untrained = AllClassUNet.from_teacher(teacher)
    assert trained.info.anchors == info.anchors  # same classes, same places
    generator = torch.Generator().manual_seed(0)
    x0 = load_dataset("digits", "train", 8).images[:32]
    eps, t = torch.randn(x0.shape, generator=generator), torch.randint(0, 1000, (32,), generator=generator)
    x_t = q_sample(x0, eps, teacher.alphas_cumprod[t])
    with torch.no_grad():
        target = torch.stack([teacher.predict_noise(x_t, t, torch.full((32,), c)) for c in range(10)], 1)
        before, after = untrained.predict_all(x_t, t), trained.predict_all(x_t, t)
    centred = lambda e: e - e.mean(1, keepdim=True)  # noqa: E731  (what ranks classes: their differences)
    assert F.mse_loss(after, target) < 0.8 * F.mse_loss(before, target)
    # the untrained heads are all the mean class, so their class differences start at zero and must grow
    assert F.mse_loss(centred(before), centred(target)) == pytest.approx(centred(target).pow(2).mean().item())
    assert F.mse_loss(centred(after), centred(target)) < 0.95 * F.mse_loss(centred(before), centred(target))


def test_save_load_round_trip_and_refusals(model_dir, tmp_path, monkeypatch, capsys):
    small = ["--batch-size", 4, "--classes-per-image", 3]
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "distill",
        "--model",
        model_dir,
        "--out",
        tmp_path / "s",
        "--steps",
        2,
        *small,
        "--checkpoint-every",
        1,
    )
    assert code == 0, err
    code, out, err = run_cli(
        monkeypatch, capsys, "distill", "--model", model_dir, "--out", tmp_path / "s", "--steps", 3, *small, "--resume"
    )
    assert code == 0, err
    info = json.loads((tmp_path / "s" / "diffclass.json").read_text())
    recipe = info["training"]["distillation"]
    assert info["backbone"] == "all_class_unet" and recipe["steps"] == 3 and recipe["teacher_weights"]
    loaded = diffclass.load(tmp_path / "s")
    again = diffclass.load(tmp_path / "s")
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([5, 500])
    assert torch.equal(loaded.backbone.predict_all(x, t), again.backbone.predict_all(x, t))
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "evaluate",
        "--model",
        tmp_path / "s",
        "--limit",
        2,
        "--strategy",
        "exhaustive(n=3)",
        "--json",
        tmp_path / "e.json",
    )
    assert code == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["nfe_per_image"] == 3
    code, out, err = run_cli(
        monkeypatch, capsys, "evaluate", "--model", tmp_path / "s", "--limit", 1, "--strategy", "hdc"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1  # the teacher had no tree, so neither has the student

    other = tiny_backbone(seed=5, classes=[str(d) for d in range(10)])
    other.info.dataset = "digits"
    other.save_pretrained(tmp_path / "other")
    code, out, err = run_cli(
        monkeypatch, capsys, "distill", "--model", tmp_path / "other", "--out", tmp_path / "s", "--steps", 4, "--resume"
    )
    assert code == 2 and "other teacher weights" in err

    info["class_names"] = list(reversed(info["class_names"]))  # heads no longer the teacher's classes
    (tmp_path / "s" / "diffclass.json").write_text(json.dumps(info))
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", tmp_path / "s", "--limit", 1)
    assert code == 2 and "does not match the teacher's" in err and len(err.strip().splitlines()) == 1


def test_the_ranking_term_teaches_the_heads_to_rank_the_true_class_first(model_dir, tmp_path):
    plain = DistillConfig(steps=100, batch_size=16, classes_per_image=3, lr=3e-3, warmup_steps=5, ema_decay=0.0)
    ranked = dataclasses.replace(plain, rank_weight=100.0, rank_temperature=0.01)
    students = [
        distill(model_dir, tmp_path / name, config, show_progress=False)
        for name, config in (("plain", plain), ("ranked", ranked))
    ]
    data = load_dataset("digits", "train", 8)
    generator = torch.Generator().manual_seed(1)
    x0, y = data.images[:64], data.labels[:64]
    eps, t = torch.randn(x0.shape, generator=generator), torch.randint(0, 1000, (64,), generator=generator)
    x_t = q_sample(x0, eps, students[0].alphas_cumprod[t])
    losses = []
    for student in students:
        with torch.no_grad():
            errors = (student.predict_all(x_t, t) - eps[:, None]).pow(2).flatten(2).mean(2)
        losses.append(F.cross_entropy(-errors / 0.01, y).item())
    assert losses[1] < 0.8 * losses[0]
    recipe = json.loads((tmp_path / "ranked" / "diffclass.json").read_text())["training"]["distillation"]
    assert recipe["rank_weight"] == 100.0 and recipe["rank_temperature"] == 0.01


def test_fine_tuning_starts_from_a_student_of_the_same_teacher_only(model_dir, tmp_path, monkeypatch, capsys):
    small = ["--batch-size", 4, "--classes-per-image", 3]
    code, _, err = run_cli(
        monkeypatch, capsys, "distill", "--model", model_dir, "--out", tmp_path / "s", "--steps", 2, *small
    )
    assert code == 0, err
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "distill",
        "--model",
        model_dir,
        "--out",
        tmp_path / "f",
        "--steps",
        1,
        *small,
        "--init",
        tmp_path / "s",
        "--lr",
        1e-8,
    )
    assert code == 0, err
    start, tuned = diffclass.load(tmp_path / "s").backbone, diffclass.load(tmp_path / "f").backbone
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([5, 500])
    torch.testing.assert_close(tuned.predict_all(x, t), start.predict_all(x, t), atol=1e-5, rtol=0)  # went on from s
    recipe = json.loads((tmp_path / "f" / "diffclass.json").read_text())["training"]["distillation"]
    assert recipe["init"] == str(tmp_path / "s") and recipe["init_weights"]

    other = tiny_backbone(seed=5, classes=[str(d) for d in range(10)])
    other.info.dataset = "digits"
    other.save_pretrained(tmp_path / "other")
    for init, message in ((tmp_path / "s", "was not distilled from"), (model_dir, "is not an all-class student")):
        code, _, err = run_cli(
            monkeypatch,
            capsys,
            "distill",
            "--model",
            tmp_path / "other",
            "--out",
            tmp_path / "g",
            "--steps",
            1,
            *small,
            "--init",
            init,
        )
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_distillation_with_augmentation_replays_exactly_and_differs_from_plain(model_dir, tmp_path):
    from safetensors.torch import load_file

    def weights(name: str, augment: str):
        config = DistillConfig(steps=3, batch_size=4, classes_per_image=2, warmup_steps=1, augment=augment)
        distill(model_dir, tmp_path / name, config, show_progress=False)
        return load_file(tmp_path / name / "diffusion_pytorch_model.safetensors")

    plain, shifted, again = (
        weights("a", "none"),
        weights("b", "shift=0.2,scale=0.1"),
        weights("c", "shift=0.2,scale=0.1"),
    )
    assert all(torch.equal(shifted[k], again[k]) for k in shifted)  # the same (seed, step): the same batches
    assert any(not torch.equal(plain[k], shifted[k]) for k in plain)
    student = diffclass.load(tmp_path / "b")
    assert student.info.training["distillation"]["augment"] == "shift=0.2,scale=0.1"
    assert student.info.training["held_out"] == diffclass.load(model_dir).info.training["held_out"]  # kept unseen
    with pytest.raises(DiffclassError, match="--augment"):
        DistillConfig(augment="zoom=2")
