import pytest
import torch

from diffclass.backbones.node_embeddings import condition_tree
from diffclass.classifier import Classifier
from diffclass.data.base import ImageDataset
from diffclass.errors import DiffclassError
from tests.conftest import CLASSES, animal_tree, tiny_backbone


def test_mean_nodes_are_the_mean_of_their_leaves():
    backbone = tiny_backbone()
    condition_tree(backbone, animal_tree(), "mean")
    table = backbone.unet.class_embedding.weight
    pets = table[backbone.row("pets")]
    assert torch.allclose(pets, table[[2, 3]].mean(dim=0))
    assert torch.allclose(table[backbone.row("chain")], table[0])
    assert backbone.condition([1, "wild"]).tolist() == [1, backbone.row("wild")]


def test_inverted_nodes_learn_with_the_network_frozen():
    backbone = tiny_backbone()
    before = {k: v.clone() for k, v in backbone.unet.state_dict().items()}
    labels = torch.arange(10) % len(CLASSES)
    data = ImageDataset("toy", torch.rand(10, 1, 8, 8) * 2 - 1, labels, CLASSES, [str(i) for i in range(10)])
    condition_tree(
        backbone, animal_tree(), "inverted", data.images, data.labels, steps=5, batch_size=4, show_progress=False
    )
    after = backbone.unet.state_dict()
    for name, value in before.items():
        if name != "class_embedding.weight":
            assert torch.equal(value, after[name]), name
    table = after["class_embedding.weight"]
    assert torch.equal(table[: len(CLASSES)], before["class_embedding.weight"])  # class rows untouched
    assert not torch.allclose(table[backbone.row("pets")], table[[2, 3]].mean(dim=0))  # node rows learned


def test_mode_is_ancestor_only_for_a_model_trained_with_the_tree(images):
    plain = Classifier(tiny_backbone())
    assert plain.use_tree(animal_tree()) == "mean"
    assert sorted(plain.classify(images[:1], "hdc(slots=2)")[0].ranking) == [0, 1, 2, 3, 4]
    trained = tiny_backbone()
    trained = type(trained).create(CLASSES, image_size=8, channels=1, width=8, tree=animal_tree())
    assert Classifier(trained).use_tree(animal_tree()) == "ancestor"
    with pytest.raises(DiffclassError, match="not trained with this tree"):
        Classifier(tiny_backbone()).use_tree(animal_tree(), "ancestor")
    with pytest.raises(DiffclassError, match="unknown node conditioning"):
        Classifier(tiny_backbone()).use_tree(animal_tree(), "telepathic")
