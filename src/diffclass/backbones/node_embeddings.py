"""Conditioning internal tree nodes of a class-conditional model that was not trained with the tree.

`mean`: a node's embedding is the mean of its leaves' class embeddings (free, but the network never saw it).
`inverted`: a node's embedding is learned with the network frozen, on training images of its subtree, by the
ordinary denoising loss (textual inversion for class embeddings). Both append rows to the class-embedding table,
so the scorer conditions on tree nodes exactly as on classes.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from diffclass.backbones.base import q_sample
from diffclass.backbones.class_unet import ClassConditionalUNet
from diffclass.errors import DiffclassError
from diffclass.hierarchy import LabelTree
from diffclass.progress import progress_bar

NodeConditioning = Literal["ancestor", "mean", "inverted"]
NODE_MODES = ("ancestor", "mean", "inverted")


def attach_mean_nodes(backbone: ClassConditionalUNet, tree: LabelTree) -> list[str]:
    """Append one row per internal node (its leaves' mean embedding); returns the nodes in row order."""
    table = backbone.unet.class_embedding.weight.data
    nodes = tree.internal_nodes()
    means = torch.stack([table[tree.leaves_under(node)].mean(dim=0) for node in nodes])
    _append_rows(backbone, tree, nodes, means)
    return nodes


def _append_rows(backbone: ClassConditionalUNet, tree: LabelTree, nodes: list[str], rows: torch.Tensor) -> None:
    old = backbone.unet.class_embedding
    first = old.num_embeddings
    new = torch.nn.Embedding(first + len(nodes), old.embedding_dim).to(old.weight.device)
    new.weight.data[:first] = old.weight.data
    new.weight.data[first:] = rows.to(old.weight.device)
    backbone.unet.class_embedding = new
    backbone.set_node_rows(tree, {node: first + i for i, node in enumerate(nodes)})


def invert_nodes(
    backbone: ClassConditionalUNet,
    tree: LabelTree,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int = 400,
    batch_size: int = 64,
    lr: float = 5e-3,
    seed: int = 0,
    show_progress: bool = True,
) -> list[str]:
    """Learn one embedding row per internal node with every network weight frozen (initialised at the mean), on
    training `images` in [-1, 1] with their class `labels`."""
    nodes = attach_mean_nodes(backbone, tree)
    rows = torch.tensor([backbone.row(node) for node in nodes])
    node_of_image = []  # for each internal node, the training images below it
    for node in nodes:
        classes = torch.tensor(tree.leaves_under(node))
        node_of_image.append(torch.isin(labels, classes).nonzero()[:, 0])
    unet = backbone.unet
    for p in unet.parameters():
        p.requires_grad_(False)
    table = unet.class_embedding.weight
    table.requires_grad_(True)
    optimizer = torch.optim.Adam([table], lr=lr)
    alphas_cumprod = backbone.alphas_cumprod.float().to(backbone.device)
    gen = torch.Generator().manual_seed(seed)
    unet.train()
    with progress_bar(show_progress) as bar:
        task = bar.add_task("invert", total=steps, status="")
        for _ in range(steps):
            which = torch.randint(len(nodes), (batch_size,), generator=gen)
            picks = torch.stack(
                [node_of_image[w][torch.randint(len(node_of_image[w]), (1,), generator=gen)][0] for w in which.tolist()]
            )
            x0 = images[picks].to(backbone.device)
            t = torch.randint(len(alphas_cumprod), (batch_size,), generator=gen).to(backbone.device)
            eps = torch.randn(x0.shape, generator=gen).to(backbone.device)
            x_t = q_sample(x0, eps, alphas_cumprod[t])
            loss = F.mse_loss(unet(x_t, t, class_labels=rows[which].to(backbone.device)).sample, eps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            keep = torch.zeros(table.shape[0], 1, dtype=torch.bool, device=table.device)
            keep[rows] = True
            table.grad *= keep  # only the node rows learn
            optimizer.step()
            bar.update(task, advance=1, status=f"loss {loss.item():.4f}")
    unet.eval()
    table.requires_grad_(False)
    return nodes


def condition_tree(
    backbone: ClassConditionalUNet,
    tree: LabelTree,
    mode: NodeConditioning,
    images: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    **invert_options,
) -> None:
    """Make `backbone` score the internal nodes of `tree` by `mode`."""
    if mode not in NODE_MODES:
        raise DiffclassError(f"unknown node conditioning {mode!r}; choose one of {', '.join(NODE_MODES)}")
    if tree.num_classes != len(backbone.info.class_names):
        raise DiffclassError(
            f"the tree has {tree.num_classes} classes, the model {len(backbone.info.class_names)}: they must match"
        )
    if mode == "ancestor":
        missing = [n for n in tree.internal_nodes() if n not in backbone.info.node_embeddings]
        if missing:
            raise DiffclassError(
                f"the model was not trained with this tree (no embedding for {missing[0]!r}); use mean or inverted"
            )
        backbone.set_node_rows(tree, backbone.info.node_embeddings)
    elif mode == "mean":
        attach_mean_nodes(backbone, tree)
    else:
        if images is None or labels is None:
            raise DiffclassError("inverted node conditioning needs training images and their labels")
        invert_nodes(backbone, tree, images, labels, **invert_options)
