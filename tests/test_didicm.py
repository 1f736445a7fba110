"""DiDiCM's noise process, loss and samplers against exact (oracle) quantities."""

import json

import pytest
import torch

from diffclass.didicm.loss import score_entropy
from diffclass.didicm.process import alpha, forward_probs, rate_matrix, sample_noisy_labels, sigma, sigma_bar
from diffclass.didicm.samplers import SamplerSpec, sample_cl, sample_cp
from diffclass.errors import DiffclassError

POSTERIOR = torch.tensor([[0.70, 0.20, 0.06, 0.03, 0.01], [0.05, 0.05, 0.10, 0.20, 0.60]])


def oracle(posterior: torch.Tensor):
    """The exact concrete score of q_t = alpha * posterior + (1 - alpha) / K, as a DiDiCM network would give."""

    def score_fn(c_t, s_bar):
        rows = posterior.repeat_interleave(len(c_t) // len(posterior), dim=0)
        a = torch.exp(-s_bar).view(-1, 1)
        log_q = torch.log(a * rows + (1 - a) / rows.shape[-1])
        return log_q - log_q.gather(1, c_t.view(-1, 1))

    return score_fn


@pytest.mark.parametrize("t", [0.01, 0.3, 0.9, 1.0])
def test_closed_form_equals_the_matrix_exponential(t):
    q0 = torch.tensor([[0.6, 0.3, 0.1, 0.0], [0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    s = sigma_bar(torch.tensor(t, dtype=torch.float64))
    exact = (torch.linalg.matrix_exp(s * rate_matrix(4).double()) @ q0.T).T
    assert torch.allclose(forward_probs(q0, torch.full((2,), t, dtype=torch.float64)), exact, atol=1e-10)


def test_noisy_labels_follow_the_marginal():
    gen = torch.Generator().manual_seed(0)
    c0 = torch.full((40000,), 2)
    t = torch.full((40000,), 0.6)
    counts = torch.bincount(sample_noisy_labels(c0, t, 5, gen), minlength=5).float() / 40000
    want = forward_probs(torch.nn.functional.one_hot(torch.tensor([2]), 5).float(), torch.tensor([0.6]))[0]
    assert torch.allclose(counts, want, atol=0.01)


def expected_loss(log_scores_of: dict, posterior: torch.Tensor, t: float) -> torch.Tensor:
    """E over c0 ~ posterior and c_t ~ q_t(. | c0) of the score entropy, enumerated exactly."""
    k = len(posterior)
    total = torch.zeros((), dtype=torch.float64)
    for c0 in range(k):
        q0 = torch.nn.functional.one_hot(torch.tensor([c0]), k).double()
        q_t = forward_probs(q0, torch.tensor([t], dtype=torch.float64))[0]
        for c_t in range(k):
            weight = posterior[c0] * q_t[c_t]
            loss = score_entropy(
                log_scores_of[c_t].view(1, -1), torch.tensor([c_t]), q0, torch.tensor([t], dtype=torch.float64)
            )
            total = total + weight * loss
    return total


def test_balanced_noisy_labels_are_an_unbiased_importance_sample_of_the_marginal():
    from diffclass.didicm.process import forward_probs, sample_noisy_labels_balanced

    gen = torch.Generator().manual_seed(0)
    n, k = 200_000, 6
    for t in (0.01, 0.5):
        c0 = torch.full((n,), 2)
        c_t, weights = sample_noisy_labels_balanced(c0, torch.full((n,), t), k, gen)
        assert 0.45 < (c_t == 2).float().mean() < 0.55  # changed labels are common even at small t
        histogram = torch.zeros(k).scatter_add_(0, c_t, weights) / n
        expected = forward_probs(torch.nn.functional.one_hot(torch.tensor([2]), k).double(), torch.tensor([t]))[0]
        assert torch.allclose(histogram.double(), expected, atol=3e-3)


def test_score_entropy_is_minimal_at_the_true_concrete_score():
    posterior = POSTERIOR[0].double()
    t = 0.4
    a = alpha(torch.tensor(t, dtype=torch.float64))
    p_t = a * posterior + (1 - a) / 5
    truth = {c: (p_t.log() - p_t[c].log()) for c in range(5)}
    best = expected_loss(truth, posterior, t)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        moved = {c: v + 0.1 * torch.randn(5, generator=gen, dtype=torch.float64) for c, v in truth.items()}
        assert expected_loss(moved, posterior, t) > best
    params = {c: v.clone().requires_grad_(True) for c, v in truth.items()}
    expected_loss(params, posterior, t).backward()
    for c, p in params.items():
        grad = p.grad.clone()
        grad[c] = 0  # the entry at c_t is fixed, not learned
        assert grad.abs().max() < 1e-8  # zero up to float64 round-off


def test_a_soft_target_gives_the_sampled_label_gradient_averaged_over_the_clean_label():
    """What training uses for mixup / smoothing: for every noisy label, the soft target's gradient is the mean of the
    hard labels' gradients under p(c0 | c_t) ∝ p(c0) q_t(c_t | c0), so nothing about the drawn label is left to
    learn from c_t."""
    target = POSTERIOR[:1].double()
    gen = torch.Generator().manual_seed(0)
    for t in (0.01, 0.6):
        times = torch.tensor([t], dtype=torch.float64)
        a = alpha(times)
        for c_t in range(5):
            noisy = torch.tensor([c_t])
            log_scores = torch.randn(1, 5, generator=gen, dtype=torch.float64)
            given_c_t = target[0] * (a * torch.eye(5, dtype=torch.float64)[:, c_t] + (1 - a) / 5)
            given_c_t = given_c_t / given_c_t.sum()

            def gradient(q0, noisy=noisy, times=times, log_scores=log_scores):
                return torch.func.grad(lambda s: score_entropy(s, noisy, q0, times))(log_scores)

            eye = torch.eye(5, dtype=torch.float64)
            averaged = sum(w * gradient(eye[c0 : c0 + 1]) for c0, w in enumerate(given_c_t))
            soft = gradient(target)
            assert torch.allclose(soft, averaged, atol=1e-10)


def test_cp_with_an_oracle_recovers_the_posterior_without_flattening():
    result = sample_cp(oracle(POSTERIOR), batch=2, num_classes=5, steps=8)
    assert result.nfe == 8
    assert (result.probabilities - POSTERIOR).abs().max() < 0.01
    single = sample_cp(oracle(POSTERIOR[:1]), batch=1, num_classes=5, steps=8)  # batch size 1
    assert (single.probabilities - POSTERIOR[:1]).abs().max() < 0.01


def test_the_papers_cp_euler_steps_approach_the_posterior_as_steps_grow():
    errors = {}
    for steps in (4, 32, 512):
        result = sample_cp(oracle(POSTERIOR), batch=2, num_classes=5, steps=steps, update="euler")
        assert result.nfe == steps and torch.allclose(result.probabilities.sum(1), torch.ones(2))
        assert (result.probabilities >= 0).all() and (result.probabilities <= 1).all()
        errors[steps] = 0.5 * (result.probabilities - POSTERIOR).abs().sum(1).max().item()
    assert errors[512] < errors[32] < errors[4] and errors[512] < 0.02


@pytest.mark.parametrize("mode", ["min", "max", "random"])
def test_every_anchor_reads_the_same_oracle_posterior(mode):
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    result = sample_cp(oracle(POSTERIOR), batch=2, num_classes=5, steps=8, mode=mode, generator=gens)
    assert (result.probabilities - POSTERIOR).abs().max() < 0.01  # the exact step: any anchor's ratios suffice


def test_the_papers_cl_tau_leaping_approaches_the_posterior():
    gen = torch.Generator().manual_seed(0)
    result = sample_cl(oracle(POSTERIOR), batch=2, num_classes=5, chains=4096, steps=64, generator=gen, update="tau")
    assert result.nfe == 64 * 4096 and torch.allclose(result.probabilities.sum(1), torch.ones(2))
    assert 0.5 * (result.probabilities - POSTERIOR).abs().sum(1).max() < 0.05


def test_sampler_specs_name_only_what_differs_from_the_defaults():
    from diffclass.didicm.samplers import SAMPLERS

    assert SAMPLERS.create("cp").name == "cp(steps=8)"
    assert SAMPLERS.create("cp(mode=max;update=euler;steps=4)").name == "cp(steps=4;mode=max;update=euler)"
    assert SAMPLERS.create("cl(update=tau)").name == "cl(N=16;steps=2;update=tau)"
    with pytest.raises(DiffclassError, match="choose one of exact, euler"):
        SAMPLERS.create("cp(update=tau)")


def test_cl_histogram_approaches_the_posterior_as_chains_grow():
    gen = torch.Generator().manual_seed(0)
    errors = []
    for chains in (16, 256, 4096):
        result = sample_cl(oracle(POSTERIOR), batch=2, num_classes=5, chains=chains, steps=2, generator=gen)
        assert result.nfe == 2 * chains and torch.allclose(result.probabilities.sum(1), torch.ones(2))
        errors.append(0.5 * (result.probabilities - POSTERIOR).abs().sum(1).max().item())
    assert errors[2] < errors[0] and errors[2] < 0.05
    one = sample_cl(oracle(POSTERIOR[:1]), batch=1, num_classes=5, chains=8, steps=2, generator=gen)
    assert one.probabilities.shape == (1, 5)


def test_didirn_outputs_concrete_scores_and_its_plain_twin_logits():
    from diffclass.didicm.network import DiDiRN, DiDiRNConfig

    torch.manual_seed(0)
    net = DiDiRN(DiDiRNConfig(num_classes=7, width=8, blocks_per_stage=(1, 1), embed_dim=16)).eval()
    images = torch.randn(3, 1, 16, 16)
    c_t = torch.tensor([0, 4, 6])
    out = net(images, c_t, sigma_bar(torch.tensor([0.1, 0.5, 0.9])))
    assert out.shape == (3, 7) and torch.equal(out.gather(1, c_t.view(-1, 1)), torch.zeros(3, 1))
    other_time = net(images, c_t, sigma_bar(torch.tensor([0.9, 0.5, 0.1])))
    assert not torch.allclose(out[0], other_time[0])  # the noise level conditions the scores
    plain = DiDiRN(DiDiRNConfig(num_classes=7, width=8, blocks_per_stage=(1, 1), conditioned=False)).eval()
    assert plain(images).shape == (3, 7)
    assert sum(p.numel() for p in plain.parameters()) < sum(p.numel() for p in net.parameters())
    one = net(images[:1], c_t[:1], sigma_bar(torch.tensor([0.3])))  # batch size 1
    assert one.shape == (1, 7)


def test_training_saving_and_both_samplers_on_a_tiny_run(tmp_path):
    from diffclass.data.base import ImageDataset
    from diffclass.didicm.model import DiDiCMModel
    from diffclass.didicm.training import DiDiCMTrainConfig, train_didicm

    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(12) % 3
    images = torch.randn(12, 1, 8, 8, generator=gen) * 0.1 + labels.view(-1, 1, 1, 1).float() - 1
    data = ImageDataset("toy", images, labels, ["a", "b", "c"], [str(i) for i in range(12)])
    for baseline in (False, True):
        config = DiDiCMTrainConfig(steps=3, batch_size=4, width=8, baseline=baseline, data_fraction=0.5)
        model = train_didicm(data, config, show_progress=False)
        assert model.training["train_images"] == 6
        model.save_pretrained(tmp_path / str(baseline))
        again = DiDiCMModel.from_pretrained(tmp_path / str(baseline))
        p = again.posterior(images[:2]).probabilities
        assert torch.allclose(p, model.posterior(images[:2]).probabilities) and torch.allclose(p.sum(1), torch.ones(2))
    plain = model  # the last one trained is the baseline: one network call per image
    assert not plain.network.config.conditioned and plain.posterior(images[:1]).nfe == 1
    didicm = DiDiCMModel.from_pretrained(tmp_path / "False")
    assert didicm.posterior(images[:2], SamplerSpec("cp", steps=4)).nfe == 4
    assert didicm.posterior(images[:2], SamplerSpec("cl", steps=2, chains=3), generator=gen).nfe == 6


def test_the_papers_free_score_head_trains_saves_and_samples(tmp_path):
    from diffclass.data.base import ImageDataset
    from diffclass.didicm.model import DiDiCMModel, meta_problem
    from diffclass.didicm.network import DiDiRN, DiDiRNConfig
    from diffclass.didicm.training import DiDiCMTrainConfig, train_didicm

    torch.manual_seed(0)
    net = DiDiRN(DiDiRNConfig(num_classes=5, width=8, head="scores")).eval()
    images, c_t = torch.randn(3, 1, 8, 8), torch.tensor([0, 2, 4])
    log_scores = net(images, c_t, sigma_bar(torch.full((3,), 0.5)))
    assert (log_scores.gather(1, c_t.view(-1, 1)) == 0).all()  # a label's score against itself
    q = torch.softmax(log_scores, dim=1)  # free scores: not tied to one clean distribution as p0's are
    assert log_scores.shape == (3, 5) and torch.isfinite(q).all()
    labels = torch.arange(12) % 3
    data = ImageDataset("toy", torch.randn(12, 1, 8, 8), labels, ["a", "b", "c"], [str(i) for i in range(12)])
    model = train_didicm(data, DiDiCMTrainConfig(steps=2, batch_size=4, width=8, head="scores"), show_progress=False)
    model.save_pretrained(tmp_path / "m")
    again = DiDiCMModel.from_pretrained(tmp_path / "m")
    assert again.network.config.head == "scores" and again.training["head"] == "scores"
    for spec in (SamplerSpec("cp", steps=3, update="euler"), SamplerSpec("cl", steps=2, chains=4, update="tau")):
        p = again.posterior(data.images[:2], spec, torch.Generator().manual_seed(0)).probabilities
        assert torch.allclose(p.sum(1), torch.ones(2))
    meta = json.loads((tmp_path / "m" / "didicm.json").read_text())
    meta["network"]["head"] = "logits"
    assert "network.head must be one of p0, scores" in meta_problem(meta)
    with pytest.raises(DiffclassError, match="--head must be one of p0, scores"):
        DiDiCMTrainConfig(head="free")
    with pytest.raises(DiffclassError, match="--transitions must be balanced or sampled"):
        DiDiCMTrainConfig(transitions="exact")
    sampled = DiDiCMTrainConfig(steps=2, batch_size=4, width=8, head="scores", transitions="sampled")
    assert train_didicm(data, sampled, show_progress=False).training["transitions"] == "sampled"
    # the paper's head is the default and reads with the paper's Euler CP; ours keeps its exact step; a twin has no head
    from diffclass.didicm.classifier import DiDiCMClassifier

    assert DiDiCMTrainConfig().head == "scores"
    assert DiDiCMClassifier.load(tmp_path / "m").default_strategy == "cp(steps=8;update=euler)"
    for name, config in (("p0", DiDiCMTrainConfig(head="p0")), ("twin", DiDiCMTrainConfig(baseline=True))):
        config.steps, config.batch_size, config.width = 2, 4, 8
        train_didicm(data, config, show_progress=False).save_pretrained(tmp_path / name)
    assert DiDiCMClassifier.load(tmp_path / "p0").default_strategy == "cp(steps=8)"
    twin = DiDiCMClassifier.load(tmp_path / "twin")
    assert twin.default_strategy == "plain" and twin.model.network.config.head == "p0"


def test_didicm_models_run_in_evaluate_bench_and_classify(monkeypatch, capsys, tmp_path):
    from PIL import Image

    from tests.conftest import run_cli

    for flag in ("--baseline", "--no-baseline"):
        code, out, err = run_cli(
            monkeypatch,
            capsys,
            "didicm",
            "train",
            "--dataset",
            "digits",
            "--steps",
            2,
            "--batch-size",
            8,
            "--width",
            8,
            flag,
            "--out",
            tmp_path / flag,
        )
        assert code == 0, err
    didicm, plain = tmp_path / "--no-baseline", tmp_path / "--baseline"
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "evaluate",
        "--model",
        didicm,
        "--strategy",
        "cl(N=2;steps=2)",
        "--limit",
        5,
        "--corruption",
        "noise:5",
        "--json",
        tmp_path / "cl.json",
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "cl.json").read_text())
    assert summary["strategy"] == "cl(N=2;steps=2)" and summary["nfe_per_image"] == 4
    assert summary["dataset"] == "digits+noise:5" and summary["n_images"] == 5
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", plain, "--limit", 5, "--json", tmp_path / "p")
    assert code == 0, err
    assert json.loads((tmp_path / "p").read_text())["strategy"] == "plain"
    code, out, err = run_cli(monkeypatch, capsys, "bench", "--model", didicm, "--limit", 3, "--json", tmp_path / "b")
    assert code == 0, err
    runs = json.loads((tmp_path / "b").read_text())
    # the paper's head (the default) compares the paper's samplers with ours; one step would read nothing
    expected = [*(f"cp(steps={s};update=euler)" for s in (2, 4, 8)), "cp(steps=8)", "cl(N=10;steps=8;update=tau)"]
    assert [r["strategy"] for r in runs] == expected
    assert [r["nfe_per_image"] for r in runs] == [2, 4, 8, 8, 80]
    Image.new("L", (20, 20), 255).save(tmp_path / "x.png")
    code, out, err = run_cli(monkeypatch, capsys, "classify", tmp_path / "x.png", "--model", didicm, "--json")
    assert code == 0, err
    assert json.loads(out)[0]["nfe"] == 8  # cp(steps=8) by default
    for model, spec, message in [
        (didicm, "adaptive", "samples with cp"),
        (plain, "cp", "plain baseline"),
        (didicm, "cp(steps=x)", "option steps='x' must be an integer"),
        (didicm, "cp(N=3)", "unknown option(s) N for cp; allowed: steps"),
    ]:
        code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", model, "--strategy", spec, "--limit", 2)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli(monkeypatch, capsys, "calibrate", "--model", didicm)
    assert code == 2 and "tunes diffusion classifiers" in err


def test_mixup_and_smoothing_blend_images_and_targets_alike_and_train():
    from diffclass.data.base import ImageDataset
    from diffclass.didicm.training import DiDiCMTrainConfig, soft_targets, train_didicm

    gen = torch.Generator().manual_seed(0)
    images = torch.stack([torch.full((1, 4, 4), float(i)) for i in range(6)])  # image i is constant i, label i
    labels = torch.arange(6)
    torch.manual_seed(0)
    mixed, targets = soft_targets(images, labels, 6, mixup=0.4, smoothing=0.0, gen=gen)
    assert torch.allclose(targets.sum(1), torch.ones(6))
    assert (targets.max(1).values < 1).any()  # some pairs really are blended
    # a mixed image is lam*i + (1-lam)*j, its target lam*e_i + (1-lam)*e_j: the target's mean label is the pixel
    assert torch.allclose(mixed[:, 0, 0, 0], targets @ torch.arange(6.0), atol=1e-5)
    pasted, by_area = soft_targets(images.repeat(1, 1, 2, 2), labels, 6, mixup=0.0, smoothing=0.0, gen=gen, cutmix=1.0)
    assert (by_area.max(1).values < 1).any() and torch.allclose(by_area.sum(1), torch.ones(6))
    # a box of image j pasted into image i: its target weighs j by the box's area, so again mean label = mean pixel
    assert torch.allclose(pasted.mean(dim=(1, 2, 3)), by_area @ torch.arange(6.0), atol=1e-5)
    _, smoothed = soft_targets(images, labels % 3, 3, mixup=0.0, smoothing=0.3, gen=gen)
    assert torch.allclose(smoothed.min(1).values, torch.full((6,), 0.1)) and torch.allclose(
        smoothed.max(1).values, torch.full((6,), 0.8)
    )
    data = ImageDataset(
        "toy",
        torch.randn(12, 1, 8, 8, generator=gen),
        torch.arange(12) % 3,
        ["a", "b", "c"],
        [str(i) for i in range(12)],
    )
    for baseline in (False, True):
        config = DiDiCMTrainConfig(
            steps=2, batch_size=4, width=8, baseline=baseline, mixup=0.4, cutmix=1.0, label_smoothing=0.1
        )
        model = train_didicm(data, config, show_progress=False)
        assert (
            model.training["mixup"] == 0.4
            and model.training["cutmix"] == 1.0
            and torch.isfinite(model.posterior(data.images[:2]).probabilities).all()
        )


def test_the_shipped_glyph_models_load_by_name_and_classify_held_out_styles(monkeypatch, capsys):
    from diffclass.backbones import embedded_models
    from diffclass.data import load_dataset
    from diffclass.didicm.classifier import DiDiCMClassifier
    from diffclass.evaluation import evaluate
    from tests.conftest import run_cli

    assert {"didicm-glyphs", "plain-glyphs"} <= set(embedded_models())
    test = load_dataset("glyphs", "test", 16)
    didicm, plain = DiDiCMClassifier.load("didicm-glyphs"), DiDiCMClassifier.load("plain-glyphs")
    assert didicm.conditioned and not plain.conditioned
    assert didicm.free_scores and not DiDiCMClassifier.load("didicm-glyphs-p0").free_scores  # the paper's head ships
    assert evaluate(didicm, test, None, limit=100, show_progress=False).top1 >= 0.85
    assert evaluate(plain, test, "plain", limit=100, show_progress=False).top1 >= 0.85
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", "didicm-glyphs", "--limit", 4)
    assert code == 0 and "cp(steps=8;update=euler)" in out, err


def test_hold_out_keeps_whole_groups_out_of_training_and_records_them(monkeypatch):
    """A held-out style must be wholly unseen (a classifier that saw other renders of a font would know it)."""
    from diffclass.data.base import ImageDataset
    from diffclass.didicm import training
    from diffclass.didicm.training import DiDiCMTrainConfig, train_didicm

    labels = torch.arange(24) % 3
    groups = [f"style{i // 6}" for i in range(24)]  # four styles of six images
    data = ImageDataset("toy", torch.randn(24, 1, 8, 8), labels, ["a", "b", "c"], [str(i) for i in range(24)], groups)
    seen = []
    real_augment = training._augment
    monkeypatch.setattr(training, "_augment", lambda images, *a: seen.append(images) or real_augment(images, *a))
    model = train_didicm(
        data, DiDiCMTrainConfig(steps=20, batch_size=4, width=8, baseline=True, hold_out=0.25), show_progress=False
    )
    (held,) = model.training["held_out"]
    assert held in groups and model.training["train_images"] == 18
    held_images = data.images[[i for i, g in enumerate(groups) if g == held]]
    trained_on = torch.cat(seen)
    assert not (trained_on[:, None] == held_images[None]).flatten(2).all(2).any()  # none of its images in a batch
    outside, inside = data.split_held_out([held])
    assert (
        len(outside) == 18
        and set(inside.groups) == {held}
        and inside.ids == [data.ids[i] for i, g in enumerate(groups) if g == held]
    )


def test_holding_out_images_without_groups_is_stratified_by_class():
    from diffclass.data import load_dataset

    train = load_dataset("digits", "train")
    held = set(train.held_out(0.2, seed=3))
    for label in range(10):
        ids = [i for i, y in zip(train.ids, train.labels.tolist()) if y == label]
        assert sum(i in held for i in ids) == round(0.2 * len(ids))  # every class keeps its share to tune on
    assert held != set(train.held_out(0.2, seed=4)) and held == set(train.held_out(0.2, seed=3))


def test_split_held_out_refuses_names_the_data_does_not_hold():
    from diffclass.data.base import ImageDataset
    from diffclass.errors import DiffclassError

    data = ImageDataset("toy", torch.zeros(4, 1, 2, 2), torch.zeros(4).long(), ["a"], list("wxyz"))
    assert data.held_out(0.5, seed=0) == sorted(data.held_out(0.5, seed=0)) and len(data.held_out(0.5)) == 2
    with pytest.raises(DiffclassError, match="none of the held-out names"):
        data.split_held_out(["q"])


@pytest.mark.parametrize("baseline", [False, True])
def test_a_resumed_training_equals_an_uninterrupted_one(tmp_path, monkeypatch, baseline):
    import diffclass.didicm.training as training
    from diffclass.data.base import ImageDataset
    from diffclass.errors import DiffclassError

    gen = torch.Generator().manual_seed(1)
    labels = torch.arange(12) % 3
    images = torch.randn(12, 1, 8, 8, generator=gen) * 0.1 + labels.view(-1, 1, 1, 1).float() - 1
    data = ImageDataset("toy", images, labels, ["a", "b", "c"], [str(i) for i in range(12)])
    config = training.DiDiCMTrainConfig(steps=6, batch_size=4, width=8, baseline=baseline, mixup=0.4)
    whole = training.train_didicm(data, config, show_progress=False)

    save = training._save_state

    def killed_after_saving(folder, step, *args):  # the run is killed right after its step-4 checkpoint
        save(folder, step, *args)
        raise KeyboardInterrupt

    checkpoint = tmp_path / "checkpoint"
    monkeypatch.setattr(training, "_save_state", killed_after_saving)
    with pytest.raises(KeyboardInterrupt):
        training.train_didicm(data, config, show_progress=False, checkpoint=checkpoint, checkpoint_every=4)
    monkeypatch.setattr(training, "_save_state", save)
    assert json.loads((checkpoint / "train_state.json").read_text())["step"] == 4
    torch.manual_seed(123)  # whatever the global random state is now, the checkpoint's is restored
    resumed = training.train_didicm(data, config, show_progress=False, checkpoint=checkpoint, resume=True)
    for (name, a), b in zip(whole.network.state_dict().items(), resumed.network.state_dict().values()):
        assert torch.equal(a, b), name
    assert json.loads((checkpoint / "train_state.json").read_text())["step"] == 6

    with pytest.raises(DiffclassError, match="nothing to resume"):
        training.train_didicm(data, config, show_progress=False, checkpoint=tmp_path / "none", resume=True)
    other = training.DiDiCMTrainConfig(steps=7, batch_size=4, width=8, baseline=baseline, mixup=0.4)
    with pytest.raises(DiffclassError, match="other options"):
        training.train_didicm(data, other, show_progress=False, checkpoint=checkpoint, resume=True)


def test_cl_gives_an_image_the_same_answer_in_any_batch():
    from diffclass.data import load_dataset
    from diffclass.didicm.classifier import DiDiCMClassifier
    from diffclass.evaluation import evaluate

    test = load_dataset("glyphs", "test").subset(range(8))
    runs = []
    for batch_size in (1, 3, 256):
        clf = DiDiCMClassifier.load("didicm-glyphs", batch_size=batch_size)
        records = evaluate(clf, test, "cl(N=4;steps=2)", show_progress=False).records
        runs.append([(r.id, r.prediction, r.top5, r.nfe) for r in records])  # all but the seconds
    assert runs[0] == runs[1] == runs[2]
    clf = DiDiCMClassifier.load("didicm-glyphs")
    alone = clf.classify(test.images[3:4], "cl(N=4;steps=2)", test.ids[3:4])[0]
    assert alone.probabilities == clf.classify(test.images, "cl(N=4;steps=2)", test.ids)[3].probabilities
    other = DiDiCMClassifier.load("didicm-glyphs", seed=1).classify(test.images, "cl(N=4;steps=2)", test.ids)
    ours = clf.classify(test.images, "cl(N=4;steps=2)", test.ids)
    assert [d.probabilities for d in other] != [d.probabilities for d in ours]  # the seed still matters


def test_stratified_data_ratio_and_training_at_a_lower_resolution(monkeypatch, capsys, tmp_path):
    from diffclass.data import load_dataset
    from diffclass.didicm.model import DiDiCMModel
    from tests.conftest import run_cli

    train = load_dataset("digits", "train")
    half = train.per_class(0.5, seed=3)
    counts = torch.bincount(half.labels, minlength=10)
    whole = torch.bincount(train.labels, minlength=10)
    assert torch.equal(counts, (whole.float() * 0.5).round().long())  # every class halved, none dropped
    assert half.ids == train.per_class(0.5, seed=3).ids and half.ids != train.per_class(0.5, seed=4).ids
    out = tmp_path / "small"
    args = ["didicm", "train", "--dataset", "digits", "--out", out, "--steps", 2, "--batch-size", 8, "--width", 8]
    code, _, err = run_cli(monkeypatch, capsys, *args, "--data-ratio", 0.25, "--image-size", 8, "--hold-out", 0)
    model = DiDiCMModel.from_pretrained(out)
    assert code == 0 and model.image_size == 8, err
    assert model.training["train_images"] == int((whole.float() * 0.25).round().sum())
    code, printed, err = run_cli(monkeypatch, capsys, "evaluate", "--model", out, "--limit", 4)
    assert code == 0 and "digits" in printed, err  # the test images come at the model's resolution


@pytest.mark.parametrize("schedule", ["loglinear", "geometric"])
def test_each_schedule_is_a_consistent_label_diffusion(schedule, tmp_path):
    t = torch.linspace(0.05, 0.95, 7, dtype=torch.float64)
    h = 1e-6
    numeric = (sigma_bar(t + h, schedule) - sigma_bar(t - h, schedule)) / (2 * h)
    assert torch.allclose(sigma(t, schedule), numeric, rtol=1e-5)  # the rate is the total noise's derivative
    q0 = torch.tensor([[0.6, 0.3, 0.1, 0.0]], dtype=torch.float64)
    for time in (0.1, 0.7):
        tt = torch.tensor([time], dtype=torch.float64)
        exact = (torch.linalg.matrix_exp(sigma_bar(tt, schedule) * rate_matrix(4).double()) @ q0.T).T
        assert torch.allclose(forward_probs(q0, tt, schedule), exact, atol=1e-10)

    def oracle_of(rows):
        def score_fn(c_t, s_bar):
            a = torch.exp(-s_bar).view(-1, 1)
            log_q = torch.log(a * rows + (1 - a) / rows.shape[-1])
            return log_q - log_q.gather(1, c_t.view(-1, 1))

        return score_fn

    result = sample_cp(oracle_of(POSTERIOR), batch=2, num_classes=5, steps=8, schedule=schedule)
    assert (result.probabilities - POSTERIOR).abs().max() < 0.01


def test_a_model_trained_on_the_geometric_schedule_samples_on_it(tmp_path):
    from diffclass.data.base import ImageDataset
    from diffclass.didicm.model import DiDiCMModel, meta_problem
    from diffclass.didicm.training import DiDiCMTrainConfig, train_didicm

    data = ImageDataset("toy", torch.randn(8, 1, 8, 8), torch.arange(8) % 2, ["a", "b"], [str(i) for i in range(8)])
    config = DiDiCMTrainConfig(steps=2, batch_size=4, width=8, schedule="geometric", head="scores")
    train_didicm(data, config, show_progress=False).save_pretrained(tmp_path / "m")
    model = DiDiCMModel.from_pretrained(tmp_path / "m")
    assert model.network.config.schedule == "geometric"
    assert torch.allclose(model.posterior(data.images[:2]).probabilities.sum(1), torch.ones(2))
    meta = json.loads((tmp_path / "m" / "didicm.json").read_text())
    meta["network"]["schedule"] = "cosine"
    assert "network.schedule must be one of loglinear, geometric" in meta_problem(meta)
    with pytest.raises(DiffclassError, match="--schedule must be one of"):
        DiDiCMTrainConfig(schedule="cosine")
