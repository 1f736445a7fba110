"""The front door: one loader for every model kind, one-way module arrows, a thin CLI that starts fast."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import diffclass
from diffclass.backbones.tiny import save_tiny_dit, save_tiny_stable_diffusion
from tests.conftest import five_class_tree

PACKAGE = Path(diffclass.__file__).parent
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

# The library's layers, lowest first: a module may import its own layer and those below, never one above.
LAYERS = [
    ["errors", "registry", "timesteps", "decision", "progress", "records", "distributed", "cost", "files", "weighting"],
    ["hierarchy"],
    ["hub"],
    ["data", "placement"],
    [
        "backbones",
        "didicm.model",
        "didicm.network",
        "didicm.process",
        "didicm.loss",
        "didicm.samplers",
        "didicm.training",
        "didicm",
    ],
    ["scoring", "strategies"],
    ["training", "pruning", "distillation"],
    ["evaluation"],
    ["classifier", "clip_filter", "prefiltered", "didicm.classifier", "replay", "calibration", "tuning", "explain"],
    ["bench", "loading", "report", "serve", "recipe", "robustness", "attack"],
    ["", "cli", "__main__"],
]


def layer_of(module: str) -> int:
    """The layer of the longest listed prefix of a module (`diffclass.didicm.classifier` before `didicm`)."""
    name = module.removeprefix("diffclass").removeprefix(".")
    best, found = -1, None
    for layer, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".") or prefix == "" and name == "") and len(prefix) > best:
                best, found = len(prefix), layer
    assert found is not None, f"{module} is in no layer: add it to LAYERS"
    return found


def imports_of(path: Path) -> set[str]:
    """diffclass modules a file imports at run time (anywhere in the file; `if TYPE_CHECKING:` blocks excepted)."""
    tree = ast.parse(path.read_text())
    guarded = [n for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)]
    skipped = {id(n) for node in guarded for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("diffclass"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("diffclass")}
    return found


def test_no_import_arrow_runs_from_a_lower_module_to_a_higher_one():
    backwards = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(("diffclass", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        for target in imports_of(path):
            if layer_of(target) > layer_of(module):
                backwards.append(f"{module} -> {target}")
    assert not backwards, "imports against the layer order:\n" + "\n".join(backwards)


def test_the_layer_check_sees_a_backwards_arrow():
    assert layer_of("diffclass.data.folders") < layer_of("diffclass.backbones.class_unet")
    assert layer_of("diffclass.didicm.classifier") > layer_of("diffclass.didicm.model") == layer_of("diffclass.didicm")
    assert layer_of("diffclass.cli.trees") > layer_of("diffclass.loading")


def test_every_cli_module_is_short():
    for path in (PACKAGE / "cli").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 250, f"{path.name} is over 250 lines"


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["evaluate", "--help"],
        ["strategies"],
        ["tree", "show", "imagenet"],
        ["tree", "validate", "TREE"],
        ["models"],
    ],
)
def test_light_commands_import_no_torch(argv, tmp_path):
    from diffclass.hierarchy import load_tree

    load_tree("cifar10").save(tmp_path / "t.json")
    argv = [str(tmp_path / "t.json") if a == "TREE" else a for a in argv]
    script = (
        "import sys; from diffclass.cli import main; sys.argv = ['diffclass', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    run = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


@pytest.mark.parametrize(
    "name",
    [
        *("digits", "glyphs", "glyphs-pruned", "glyphs-allclass", "didicm-glyphs", "didicm-glyphs-p0"),
        *("plain-glyphs", "plain-glyphs-aug", "plain-glyphs-shift"),
        *("emoji", "plain-emoji", "plain-emoji-aug"),
    ],
)
def test_every_embedded_model_loads_by_name_and_classifies(name):
    clf = diffclass.load(name)
    info = clf.info
    assert clf.class_names == info.class_names and len(clf.class_names) in (10, 106, 227)
    assert clf.macs_per_call > 0 and clf.default_strategy
    images = torch.zeros(2, info.channels, info.image_size, info.image_size)
    spec = None if name.startswith(("didicm-", "plain-")) else "exhaustive(n=1)"
    decisions = clf.classify(images, spec, ["a", "b"])
    assert [0 <= d.label < len(clf.class_names) for d in decisions] == [True, True]
    assert abs(sum(decisions[0].probabilities.values()) - 1) < 1e-6


def test_a_saved_copy_of_an_embedded_model_carries_no_local_path(tmp_path):
    original = diffclass.load("glyphs")
    original.backbone.save_pretrained(tmp_path / "copy")
    config = (tmp_path / "copy" / "config.json").read_text()
    assert "_name_or_path" not in config and "assets" not in config
    again = diffclass.load(tmp_path / "copy")
    images = torch.zeros(1, original.info.channels, original.info.image_size, original.info.image_size)
    _same_decisions(original, again, torch.cat([images, images]), "exhaustive(n=2)")


def _same_decisions(a, b, images, spec):
    first, second = a.classify(images, spec, ["x", "y"]), b.classify(images, spec, ["x", "y"])
    assert [d.ranking for d in first] == [d.ranking for d in second]
    assert all(d.scores == pytest.approx(e.scores, rel=1e-5) for d, e in zip(first, second))


def test_a_saved_stable_diffusion_folder_reads_its_classes_prompts_and_tree_back(tmp_path):
    save_tiny_stable_diffusion(tmp_path / "hub")
    original = diffclass.load(
        f"sd:{tmp_path / 'hub'}", class_names="cifar10", templates=["a tiny {}."], tree="cifar10", batch_size=16
    )
    original.backbone.save_pretrained(tmp_path / "saved")
    assert not any("_name_or_path" in c.read_text() for c in (tmp_path / "saved").glob("*/config.json"))
    again = diffclass.load(tmp_path / "saved", batch_size=16)
    assert again.class_names == CIFAR10 and again.info.templates == ["a tiny {}."]
    assert again.tree is not None and again.tree.to_dict() == original.tree.to_dict()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    _same_decisions(original, again, images, "hdc(slots=1;final=exhaustive(n=1))")


def test_a_saved_dit_folder_reads_its_classes_and_tree_back(tmp_path):
    save_tiny_dit(tmp_path / "hub")
    original = diffclass.load(f"dit:{tmp_path / 'hub'}", class_names=CIFAR10, tree="cifar10", batch_size=16)
    original.backbone.save_pretrained(tmp_path / "saved")
    again = diffclass.load(tmp_path / "saved", batch_size=16)
    assert again.class_names == CIFAR10 and again.tree.to_dict() == original.tree.to_dict()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    _same_decisions(original, again, images, "hdc(slots=1;final=exhaustive(n=1))")


def test_a_pruned_folder_loads_smaller_and_classifies_as_it_did_in_memory(model_dir, tmp_path):
    from diffclass.pruning.finetune import prune_model

    report = prune_model(model_dir, tmp_path / "pruned", "magnitude", 0.5, 0, calibration_images=8)
    pruned, original = diffclass.load(tmp_path / "pruned"), diffclass.load(model_dir)
    assert pruned.macs_per_call == report.macs_after < original.macs_per_call == report.macs_before
    assert pruned.info.pruning["method"] == "magnitude"
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert len(pruned.classify(images, "exhaustive(n=2)")) == 2


def test_a_didicm_folder_loads_and_refuses_diffusion_options(tmp_path):
    from diffclass.data.base import ImageDataset
    from diffclass.didicm.classifier import DiDiCMClassifier
    from diffclass.didicm.training import DiDiCMTrainConfig, train_didicm
    from diffclass.errors import DiffclassError

    labels = torch.arange(6) % 3
    data = ImageDataset("toy", torch.randn(6, 1, 8, 8), labels, ["a", "b", "c"], [str(i) for i in range(6)])
    train_didicm(data, DiDiCMTrainConfig(steps=2, batch_size=3, width=8), show_progress=False).save_pretrained(tmp_path)
    clf = diffclass.load(tmp_path)
    assert (
        isinstance(clf, DiDiCMClassifier)
        and clf.class_names == ["a", "b", "c"]
        and clf.default_strategy == "cp(steps=8;update=euler)"
    )
    assert clf.classify(data.images[:2], "cp(steps=2)")[0].nfe == 2
    with pytest.raises(DiffclassError, match="timesteps apply to diffusion models"):
        diffclass.load(tmp_path, timesteps="0-500")


def test_every_registered_strategy_builds_from_its_defaults_and_ranks_every_class(classifier, images, tmp_path):
    from diffclass.strategies import STRATEGIES

    classifier.backbone.save_pretrained(tmp_path / "filter")  # prefilter needs a model to filter by
    classifier.use_tree(five_class_tree())
    classifier.info.anchors = [[3.5, 3.5], [2.0, 3.0], [4.0, 5.0], [3.5, 1.0], [6.0, 6.0]]  # registered: as trained
    classifier.info.front = dict(
        weights=classifier.weights, points=[dict(spec="exhaustive(n=3)", top1=1.0, nfe_per_image=15)]
    )  # auto: a front
    needs = {"prefilter": f"prefilter(by={tmp_path / 'filter'})"}
    for entry in STRATEGIES:
        bare = classifier.strategy(needs.get(entry.name, entry.name))
        decisions = classifier.classify(images[:2], bare, ["a", "b"])
        assert all(sorted(d.ranking) == list(range(5)) and d.nfe > 0 for d in decisions), entry.name
        again = classifier.strategy(bare.name)  # a printed name is a spec that builds the same strategy
        assert again.name == bare.name
        assert [d.ranking for d in classifier.classify(images[:2], again, ["a", "b"])] == [d.ranking for d in decisions]


def test_every_registered_option_rejects_a_value_outside_its_range(classifier):
    from diffclass.errors import DiffclassError
    from diffclass.strategies import STRATEGIES

    classifier.use_tree(five_class_tree())
    for entry in STRATEGIES:
        for option in entry.options:
            with pytest.raises(DiffclassError, match=option.name):
                classifier.strategy(f"{entry.name}({option.name}=-7.5x)")
