import json

import pytest
import torch

from diffclass.backbones import ClassConditionalUNet, ModelInfo, load_backbone
from diffclass.classifier import Classifier
from diffclass.errors import DiffclassError
from tests.conftest import tiny_backbone


def test_save_load_round_trip_gives_identical_errors(backbone, images, tmp_path):
    backbone.info.temperature = 0.0123
    backbone.save_pretrained(tmp_path / "model")
    assert {p.name for p in (tmp_path / "model").iterdir()} >= {
        "config.json",
        "diffclass.json",
        "diffusion_pytorch_model.safetensors",
    }
    loaded = load_backbone(tmp_path / "model")
    assert isinstance(loaded, ClassConditionalUNet)
    assert loaded.info == backbone.info
    before = Classifier(backbone).classify(images, "exhaustive(n=5)")
    after = Classifier(loaded).classify(images, "exhaustive(n=5)")
    assert [d.scores for d in before] == [d.scores for d in after]
    assert torch.equal(loaded.alphas_cumprod, backbone.alphas_cumprod)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    tiny_backbone().save_pretrained(tmp_path / "a")
    ClassConditionalUNet.create(["x", "y"], image_size=8, channels=1, width=16).save_pretrained(tmp_path / "b")
    (tmp_path / "a" / "diffusion_pytorch_model.safetensors").replace(
        tmp_path / "b" / "diffusion_pytorch_model.safetensors"
    )
    with pytest.raises(
        DiffclassError, match=r"the weights do not fit the config: tensor conv_in.weight has shape \[8, 1, 3, 3\]"
    ):
        load_backbone(tmp_path / "b")


def test_class_names_must_match_the_class_embeddings(tmp_path):
    tiny_backbone().save_pretrained(tmp_path / "m")
    info = json.loads((tmp_path / "m" / "diffclass.json").read_text())
    info["class_names"] = ["only", "two"]
    (tmp_path / "m" / "diffclass.json").write_text(json.dumps(info))
    with pytest.raises(DiffclassError, match="class embeddings"):
        load_backbone(tmp_path / "m")


def test_pickled_weights_are_refused(tmp_path):
    tiny_backbone().save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "diffusion_pytorch_model.safetensors").unlink()
    (tmp_path / "m" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(DiffclassError, match="pickled weights"):
        load_backbone(tmp_path / "m")


@pytest.mark.parametrize("content", ["{not json", '{"backbone": "class_unet"}'])
def test_malformed_model_info_is_refused(tmp_path, content):
    (tmp_path / "diffclass.json").write_text(content)
    with pytest.raises(DiffclassError, match="malformed"):
        ModelInfo.load(tmp_path)


def test_unknown_names_and_folders(tmp_path):
    with pytest.raises(DiffclassError, match="unknown model"):
        load_backbone("no-such-model")
    with pytest.raises(DiffclassError, match="not a diffclass model folder"):
        load_backbone(tmp_path)


def test_embedded_digits_model_ships_with_the_package():
    backbone = load_backbone("digits")
    assert backbone.info.class_names == [str(d) for d in range(10)]
    assert backbone.info.temperature != 1.0  # fitted on training images
    assert backbone.info.training["steps"] > 0


def test_embedded_glyphs_model_descends_its_own_tree():
    from diffclass.data import load_dataset

    clf = Classifier.load("glyphs")
    assert clf.tree is not None and clf.tree.num_classes == len(clf.class_names) >= 100
    assert clf.backbone.info.node_conditioning == "ancestor" and clf.backbone.info.timestep_range is not None
    test = load_dataset("glyphs", "test")
    (decision,) = clf.classify(test.images[:1], "hdc(slots=2;final=exhaustive;n=4)", test.ids[:1])
    assert sorted(decision.ranking) == list(range(len(clf.class_names)))


def test_every_sweep_spec_builds_on_the_glyphs_model_and_names_itself():
    from diffclass.bench import with_original_grid
    from diffclass.strategies.families import SWEEP_SPECS

    clf = Classifier.load("glyphs")
    specs = with_original_grid(SWEEP_SPECS, "0-999")
    assert len(specs) == len(SWEEP_SPECS) + 10  # five exhaustive and five adaptive runs again on the full range
    names = [clf.strategy(spec).name for spec in specs]
    assert len(set(names)) == len(names)
    assert all(clf.strategy(name).name == name for name in names)
    assert all("final=adaptive(keep=" in name for name in names if name.startswith("hdc("))


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "diffusion_pytorch_model.safetensors"))


@pytest.mark.parametrize(
    "change, message",
    [
        ("drop", "missing tensor conv_out.bias"),
        ("extra", "unexpected tensor stowaway"),
        ("reshape", r"tensor conv_out.bias has shape \[2\], the config needs \[1\]"),
    ],
)
def test_weights_that_do_not_fit_exactly_are_refused_naming_the_tensor(tmp_path, change, message):
    from safetensors.torch import save_file

    tiny_backbone().save_pretrained(tmp_path / "m")
    weights = _weights(tmp_path / "m")
    if change == "drop":
        del weights["conv_out.bias"]
    elif change == "extra":
        weights["stowaway"] = torch.zeros(3)
    else:
        weights["conv_out.bias"] = torch.zeros(2)
    save_file(weights, str(tmp_path / "m" / "diffusion_pytorch_model.safetensors"))
    with pytest.raises(DiffclassError, match=message):
        load_backbone(tmp_path / "m")


def test_a_pickle_is_refused_whatever_its_name_or_index_says(tmp_path):
    tiny_backbone().save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "diffusion_pytorch_model.safetensors"
    real = weights.read_bytes()
    torch.save({"x": torch.zeros(1)}, weights)  # a pickle wearing the safetensors suffix
    with pytest.raises(DiffclassError, match="is not a safetensors file"):
        load_backbone(tmp_path / "m")
    weights.write_bytes(real)
    (tmp_path / "m" / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"conv_out.bias": "evil.pt"}})
    )
    with pytest.raises(DiffclassError, match="safetensors shards in the folder only"):
        load_backbone(tmp_path / "m")
    index = tmp_path / "m" / "diffusion_pytorch_model.safetensors.index.json"
    for text, message in (("[" * 100_000, "nested too deeply"), ("[1]", "no weight_map"), ("{", "not valid JSON")):
        index.write_text(text)
        with pytest.raises(DiffclassError, match=message):
            load_backbone(tmp_path / "m")
