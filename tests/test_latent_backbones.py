"""Stable Diffusion (zero-shot) and DiT (class-conditional latent) backbones on tiny random components."""

import shutil

import pytest
import torch

from diffclass.backbones import load_backbone
from diffclass.backbones.dit import DiTBackbone
from diffclass.backbones.stable_diffusion import StableDiffusionBackbone
from diffclass.backbones.tiny import save_tiny_dit, save_tiny_stable_diffusion
from diffclass.classifier import Classifier
from diffclass.errors import DiffclassError
from diffclass.hierarchy import load_tree
from tests.conftest import CallRecorder

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SPECS = ["exhaustive(n=3)", "adaptive(keep=3,1;n=2,4)", "beam(b=2;t_s=2)", "hdc(slots=2)", "hdc+beam(slots=2;t_s=2)"]


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    return save_tiny_stable_diffusion(tmp_path_factory.mktemp("sd") / "pipeline")


@pytest.fixture(scope="module")
def dit_folder(tmp_path_factory):
    return save_tiny_dit(tmp_path_factory.mktemp("dit") / "pipeline")


@pytest.fixture
def rgb():
    return torch.rand(3, 3, 20, 20, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.mark.parametrize("spec", SPECS)
def test_stable_diffusion_runs_every_strategy(sd_folder, rgb, spec):
    clf = Classifier.load(f"sd:{sd_folder}", class_names=CIFAR10, templates=["a photo of a {}."], batch_size=16)
    assert isinstance(clf.backbone, StableDiffusionBackbone) and clf.backbone.resolution == 16
    assert clf.use_tree(load_tree("cifar10", 10)) == "prompt"
    decisions = clf.classify(rgb, spec)
    assert all(sorted(d.ranking) == list(range(10)) and d.nfe > 0 for d in decisions)


def test_latents_and_text_embeddings_are_computed_once(sd_folder, rgb):
    clf = Classifier.load(sd_folder, class_names=CIFAR10, templates=["a photo of a {}.", "a blurry photo of a {}."])
    encodes = []
    original = clf.backbone.vae.encode
    clf.backbone.vae.encode = lambda x: encodes.append(len(x)) or original(x)
    clf.classify(rgb, "adaptive(keep=3,1;n=2,6)")
    clf.classify(rgb[:1], "exhaustive(n=2)")
    assert sum(encodes) == 4  # one latent per image per classify call
    assert clf.backbone.text_calls == 10  # one (ensembled) embedding per class, reused across images and calls
    assert clf.backbone.prompts(3) == ["a photo of a cat.", "a blurry photo of a cat."]


def test_v_prediction_is_scored_as_epsilon(tmp_path):
    folder = save_tiny_stable_diffusion(tmp_path / "v", prediction_type="v_prediction")
    backbone = load_backbone(folder, class_names=["a", "b"])
    x_t, t = torch.randn(2, 4, 8, 8), torch.tensor([10, 900])
    cond = backbone.condition([0, 1])
    with torch.no_grad():
        v = backbone.unet(x_t, t, encoder_hidden_states=cond).sample
        eps = backbone.predict_noise(x_t, t, cond)
    a = backbone.alphas_cumprod[t].float().view(-1, 1, 1, 1)
    assert torch.allclose(eps, a.sqrt() * v + (1 - a).sqrt() * x_t, atol=1e-5)


@pytest.mark.parametrize("spec", SPECS)
def test_dit_runs_every_strategy_with_mean_tree_nodes(dit_folder, rgb, spec):
    clf = Classifier.load(f"dit:{dit_folder}", class_names=CIFAR10, batch_size=16)
    assert isinstance(clf.backbone, DiTBackbone)
    assert clf.use_tree(load_tree("cifar10", 10)) == "mean"
    recorder = CallRecorder(clf.backbone)
    decisions = clf.classify(rgb[:, :, :16, :16], spec)
    assert all(sorted(d.ranking) == list(range(10)) for d in decisions)
    assert sum(d.nfe for d in decisions) == len(recorder.triples)


def test_dit_scores_epsilon_not_the_learned_variance(dit_folder):
    backbone = load_backbone(dit_folder, class_names=CIFAR10)
    x_t = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        eps = backbone.predict_noise(x_t, torch.tensor([5, 500]), backbone.condition([1, 2]))
    assert eps.shape == x_t.shape and backbone.transformer.config.out_channels == 8
    table = backbone.label_tables()[0].embedding_table.weight
    backbone.use_tree(load_tree("cifar10", 10))
    vehicle = backbone.label_tables()[0].embedding_table.weight[backbone.row("vehicle")]
    leaves = load_tree("cifar10", 10).leaves_under("vehicle")
    assert torch.allclose(vehicle, table[leaves].mean(dim=0))


def test_what_cannot_be_loaded_is_named(sd_folder, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(sd_folder, broken)
    shutil.rmtree(broken / "vae")
    (broken / "vae").mkdir()
    with pytest.raises(DiffclassError, match=r"cannot load the VAE \(vae/\) of"):
        load_backbone(broken, class_names=["a"])
    with pytest.raises(DiffclassError, match=r"cannot load the UNet \(unet/\) of no-such-org/no-such-model"):
        load_backbone("sd:no-such-org/no-such-model", class_names=["a"])
    with pytest.raises(DiffclassError, match="needs class names"):
        load_backbone(sd_folder)
    with pytest.raises(DiffclassError, match="needs a CUDA device"):
        load_backbone(sd_folder, class_names=["a"], dtype="float16")


def test_zero_shot_from_the_command_line(sd_folder, tmp_path, monkeypatch, capsys):
    import json

    from PIL import Image

    from tests.conftest import run_cli

    for name, colour in (("red apple", (220, 20, 20)), ("green leaf", (20, 200, 20))):
        (tmp_path / "data" / name).mkdir(parents=True)
        for k in range(2):
            Image.new("RGB", (24 + k, 20), colour).save(tmp_path / "data" / name / f"{k}.jpg")
    (tmp_path / "prompts.json").write_text(json.dumps({"red apple": ["a {}", "red"], "green leaf": "a green leaf"}))
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "evaluate",
        "--model",
        f"sd:{sd_folder}",
        "--dataset",
        f"folder:{tmp_path / 'data'}",
        "--prompts",
        tmp_path / "prompts.json",
        "--strategy",
        "exhaustive(n=2)",
        "--json",
        tmp_path / "s.json",
    )
    assert code == 0, err
    assert json.loads((tmp_path / "s.json").read_text())["n_images"] == 4
    (tmp_path / "classes.txt").write_text("red apple\ngreen leaf\n")
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "classify",
        tmp_path / "data",
        "--model",
        sd_folder,
        "--classes",
        tmp_path / "classes.txt",
        "--prompt",
        "a photo of a {}.",
        "--json",
    )
    assert code == 0, err
    assert {row["prediction"] for row in json.loads(out)} <= {"red apple", "green leaf"}


def test_shipped_class_lists_and_prompt_files(tmp_path):
    from diffclass.backbones.prompts import read_classes, read_prompts
    from diffclass.loading import zero_shot_options

    assert read_classes("imagenet")[:2] == ["tench", "goldfish"] and len(read_classes("imagenet")) == 1000
    assert read_classes("cifar10")[3] == "cat" and len(read_classes("cifar100")) == 100
    assert zero_shot_options("sd:any", "cifar10")["templates"] == ["a blurry photo of a {}."]
    assert zero_shot_options("sd:any", "cifar10", prompt=["a {}"]) == dict(class_names=CIFAR10, templates=["a {}"])
    assert zero_shot_options("dit:any", "cifar10") == dict(class_names=CIFAR10)
    assert zero_shot_options("digits", "cifar10") == {}
    (tmp_path / "p.csv").write_text("cat,a photo of a cat\ncat,a cat\ndog,a dog\n")
    assert read_prompts(tmp_path / "p.csv") == {"cat": ["a photo of a cat", "a cat"], "dog": ["a dog"]}
    (tmp_path / "c.txt").write_text("cat\ncat\n")
    with pytest.raises(DiffclassError, match="repeat"):
        read_classes(tmp_path / "c.txt")


def test_dit_checkpoints_saved_as_the_generic_transformer2d_load(tmp_path, rgb):
    """facebook/DiT-XL-2-* declare Transformer2DModel in their config; diffclass must read that layout too."""
    from diffusers import DDPMScheduler, Transformer2DModel

    from diffclass.backbones.tiny import tiny_vae

    torch.manual_seed(0)
    Transformer2DModel(
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=8,
        num_layers=2,
        sample_size=8,
        patch_size=2,
        num_embeds_ada_norm=10,
        norm_type="ada_norm_zero",
        norm_num_groups=8,
    ).save_pretrained(tmp_path / "transformer")
    tiny_vae().save_pretrained(tmp_path / "vae")
    DDPMScheduler().save_pretrained(tmp_path / "scheduler")
    clf = Classifier.load(f"dit:{tmp_path}", class_names=CIFAR10, batch_size=16)
    assert sorted(clf.classify(rgb[:1, :, :16, :16], "exhaustive(n=2)")[0].ranking) == list(range(10))


def test_explain_on_stable_diffusion_shows_the_class_words_cross_attention(sd_folder, rgb, tmp_path):
    from diffclass.explain import explain, explain_plot

    clf = Classifier.load(f"sd:{sd_folder}", class_names=CIFAR10, templates=["a photo of a {}."], batch_size=16)
    backbone = clf.backbone
    positions = backbone.word_positions(1)  # "automobile": its tokens inside "a photo of a automobile."
    ids = backbone.tokenizer("a photo of a automobile.").input_ids
    word = backbone.tokenizer("automobile", add_special_tokens=False).input_ids
    assert [ids[i] for i in positions] == word
    before = {n: type(p) for n, p in backbone.unet.attn_processors.items()}
    result = explain(clf, rgb[0], "exhaustive(n=2)", "img", slots=4)
    assert {n: type(p) for n, p in backbone.unet.attn_processors.items()} == before  # the recorders are removed
    plain = clf.classify(rgb[:1], "exhaustive(n=2)", ["img"])[0]
    latent = backbone.encode(rgb[:1]).shape[-2:]
    assert result.decision.ranking == plain.ranking
    assert list(result.attention) == plain.ranking[:3]
    for maps in result.attention.values():  # per view timestep, a map at the latent's size; attention sums to <= 1
        heat = torch.tensor(maps)
        assert heat.shape == (3, *latent) and (heat >= 0).all() and (heat <= 1 + 1e-5).all() and heat.sum() > 0
    explain_plot(result, tmp_path / "e.png")
    assert (tmp_path / "e.png").stat().st_size > 1000 and "attention" in result.to_json()


@pytest.mark.parametrize(
    ("part", "key", "value", "message"),
    [
        ("unet", "layers_per_block", 100_000, "too large: layers_per_block = 100000"),
        ("unet", "block_out_channels", [32, 10_000_000], "too large: block_out_channels"),
        ("unet", "block_out_channels", [65536, 65536], "would hold .*B parameters, over the bound"),
        ("text_encoder", "num_hidden_layers", 5000, "too large: num_hidden_layers = 5000"),
        ("vae", "block_out_channels", "wide", "block_out_channels = 'wide' must be a list"),
        ("unet", "norm_eps", "x", "norm_eps = 'x' must be a number"),
        ("unet", "attention_head_dim", 0, "cannot build the UNet"),
        ("text_encoder", "hidden_size", "x", "hidden_size"),
    ],
)
def test_an_oversized_or_broken_hub_layout_config_is_refused_before_it_is_built(
    sd_folder, tmp_path, part, key, value, message
):
    import json

    broken = tmp_path / "broken"
    shutil.copytree(sd_folder, broken)
    config = json.loads((broken / part / "config.json").read_text())
    config[key] = value
    (broken / part / "config.json").write_text(json.dumps(config))
    with pytest.raises(DiffclassError, match=message):
        load_backbone(broken, class_names=["a"])
