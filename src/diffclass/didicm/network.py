"""DiDiRN: a small ResNet whose residual blocks add an embedding of (noise level, noisy label).

Time enters as a sinusoidal embedding of sigma_bar(t) through an MLP, the noisy label c_t through an embedding;
their sum is projected into every residual block (projections start at zero, so the image path learns first and
the conditioning is added as it helps). The output is K log concrete scores log q_t(i)/q_t(c_t), with the entry
at c_t fixed to 0, computed from a predicted clean-label distribution p0: q_t = alpha p0 + (1 - alpha)/K. Scores
at every time and anchor then belong to one posterior by construction, and at t -> 1 they are near 0 without the
network having to learn that scale. Without conditioning (`conditioned=False`) the same network is the plain
classifier baseline (K logits), so the two differ only by the diffusion.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

HEADS = ("p0", "scores")


@dataclass
class DiDiRNConfig:
    num_classes: int
    in_channels: int = 1
    width: int = 32
    blocks_per_stage: tuple[int, ...] = (2, 2, 2)
    embed_dim: int = 128
    conditioned: bool = True
    head: str = "p0"  # p0: scores derived from a clean-label distribution (ours); scores: free log scores (paper's)
    schedule: str = "loglinear"  # the label diffusion's noise schedule it was trained with (the samplers follow it)

    def __post_init__(self):
        if not self.conditioned:
            self.head = "p0"  # a plain twin has no label head: its outputs are p0's class logits

    def to_dict(self) -> dict:
        return asdict(self)


def sinusoidal(values: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=values.device) / half)
    angles = values.float().view(-1, 1) * freqs.view(1, -1) * 100.0  # sigma_bar spans ~[0, 7]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, embed_dim: int | None):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(c_out)
        self.skip = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )
        self.embed = nn.Linear(embed_dim, c_out) if embed_dim else None
        if self.embed is not None:
            nn.init.zeros_(self.embed.weight)
            nn.init.zeros_(self.embed.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x)))
        if self.embed is not None and emb is not None:
            h = h + self.embed(emb)[:, :, None, None]  # the diffusion conditioning, added in every block
        h = self.norm2(self.conv2(h))
        return F.relu(h + self.skip(x))


class DiDiRN(nn.Module):
    def __init__(self, config: DiDiRNConfig):
        super().__init__()
        self.config = config
        c, k, e = config.width, config.num_classes, config.embed_dim
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        embed_dim = e if config.conditioned else None
        blocks, c_in = [], c
        for stage, count in enumerate(config.blocks_per_stage):
            c_out = c * 2**stage
            for i in range(count):
                blocks.append(ResidualBlock(c_in, c_out, 2 if (i == 0 and stage > 0) else 1, embed_dim))
                c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c_in, k)
        if config.conditioned:
            self.time_mlp = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
            self.label_embedding = nn.Embedding(k, e)

    def clean_logits(
        self, images: torch.Tensor, c_t: torch.Tensor | None = None, s_bar: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The head's logits of the clean-label distribution p0 (the plain twin's class logits)."""
        emb = None
        if self.config.conditioned:
            emb = self.time_mlp(sinusoidal(s_bar, self.config.embed_dim)) + self.label_embedding(c_t)
        h = self.stem(images)
        for block in self.blocks:
            h = block(h, emb)
        return self.head(h.mean(dim=(2, 3)))

    def forward(
        self, images: torch.Tensor, c_t: torch.Tensor | None = None, s_bar: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = self.clean_logits(images, c_t, s_bar)
        if not self.config.conditioned:
            return out
        if self.config.head == "scores":  # the paper's head: K free log concrete scores, 0 at the noisy label itself
            return out.scatter(1, c_t.view(-1, 1), 0.0)
        a = torch.exp(-s_bar.float()).view(-1, 1)  # alpha(t)
        k = out.shape[-1]
        log_q = torch.logaddexp(torch.log(a) + torch.log_softmax(out, dim=-1), torch.log((1 - a) / k))
        return log_q - log_q.gather(1, c_t.view(-1, 1))  # log q_t(c_t)/q_t(c_t) = 0
