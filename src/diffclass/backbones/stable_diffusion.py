"""Zero-shot diffusion classification with Stable Diffusion 1.x / 2.x: classes are prompts.

Text embeddings are computed once per class (or tree node) and cached; several prompt templates per class are
ensembled by averaging their text-encoder hidden states (one network call per timestep, as with one prompt).
v-prediction checkpoints (SD 2.x 768) are scored in epsilon space: eps = sqrt(a) * v + sqrt(1 - a) * x_t, so
every checkpoint's errors mean the same thing and the paper's l2-on-epsilon criterion is kept. `word_attention`
reads where the UNet's cross-attention looks for a class's words (for `diffclass explain`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor

from diffclass.backbones.base import BACKBONES
from diffclass.backbones.latent import load_component, public_config, resolve_dtype, vae_encode
from diffclass.backbones.prompts import ONE_TEMPLATE, PromptConditioned, load_prompted
from diffclass.errors import DiffclassError
from diffclass.hub import ModelInfo


class _WordAttention(AttnProcessor):
    """diffusers' plain attention processor, recording for each call how much attention every query position
    pays to the given token positions (summed over them, averaged over heads and the batch)."""

    def __init__(self, positions: Sequence[int], maps: list):
        super().__init__()
        self.positions, self.maps = list(positions), maps

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, *args, **kwargs):
        scores = attn.get_attention_scores

        def recording(query, key, attention_mask=None):
            probabilities = scores(query, key, attention_mask)  # [batch * heads, queries, tokens]
            self.maps.append(probabilities[..., self.positions].sum(-1).mean(0).float().cpu())
            return probabilities

        attn.get_attention_scores = recording
        try:
            return super().__call__(attn, hidden_states, encoder_hidden_states, *args, **kwargs)
        finally:
            del attn.get_attention_scores  # the class's own method again


def _is_sd_folder(folder: Path) -> bool:
    return (folder / "unet").is_dir() and (folder / "text_encoder").is_dir()


@BACKBONES.register(
    "stable_diffusion",
    help="zero-shot text-to-image latent UNet (sd:HUB_ID or a pipeline folder)",
    prefix="sd",
    detect=_is_sd_folder,
    parts=("unet", "vae", "text_encoder", "tokenizer", "scheduler"),
    told_classes=True,
    text=True,
)
def _load(
    source, *, device="cpu", class_names=None, templates=None, dtype="float32", info=None
) -> StableDiffusionBackbone:
    return load_prompted(StableDiffusionBackbone, source, class_names, templates, device, dtype, info)


class StableDiffusionBackbone(PromptConditioned):
    def __init__(
        self,
        unet,
        vae,
        text_encoder,
        tokenizer,
        scheduler,
        class_names: Sequence[str],
        templates: Sequence[str] | dict[str, Sequence[str]] = ONE_TEMPLATE,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        source: str = "",
    ):
        self.device = torch.device(device)
        self.dtype = dtype
        self.unet = unet.to(self.device).eval()
        self.vae = vae.to(self.device).eval()
        self.text_encoder = text_encoder.to(self.device).eval()
        self.tokenizer = tokenizer
        self.prediction_type = scheduler.config.prediction_type
        self.alphas_cumprod = scheduler.alphas_cumprod.to(torch.float64)
        self.resolution = unet.config.sample_size * 2 ** (len(vae.config.block_out_channels) - 1)
        self._start_prompts(templates)
        self.info = ModelInfo(
            backbone="stable_diffusion",
            class_names=list(class_names),
            image_size=self.resolution,
            channels=3,
            scheduler=public_config(scheduler),
            dataset=None,
            training=dict(source=str(source)),
            templates=self.stored_templates(templates),
        )

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        class_names: Sequence[str],
        templates=ONE_TEMPLATE,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> StableDiffusionBackbone:
        """A hub id (needs the network or a warm cache) or a local diffusers pipeline folder."""
        from transformers import CLIPTextModel, CLIPTokenizer

        torch_dtype = resolve_dtype(dtype, device)
        return cls(
            load_component(UNet2DConditionModel, source, "unet", "UNet", torch_dtype),
            load_component(AutoencoderKL, source, "vae", "VAE", torch_dtype),
            load_component(CLIPTextModel, source, "text_encoder", "text encoder", torch_dtype),
            load_component(CLIPTokenizer, source, "tokenizer", "tokenizer"),
            load_component(DDPMScheduler, source, "scheduler", "noise schedule"),
            class_names,
            templates,
            device,
            torch_dtype,
            source,
        )

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.unet

    def save_pretrained(self, folder: str | Path) -> None:
        """A diffusers pipeline folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/) that loads back."""
        folder = Path(folder)
        self.unet.save_pretrained(folder / "unet")
        self.vae.save_pretrained(folder / "vae")
        self.text_encoder.save_pretrained(folder / "text_encoder")
        self.tokenizer.save_pretrained(folder / "tokenizer")
        DDPMScheduler(**self.info.scheduler).save_pretrained(folder / "scheduler")
        self.info.save(folder)

    @torch.no_grad()
    def _embed(self, key: Hashable) -> torch.Tensor:
        tokens = self.tokenizer(
            self.prompts(key),
            padding="max_length",
            truncation=True,
            max_length=self.tokenizer.model_max_length,
            return_tensors="pt",
        )
        hidden = self.text_encoder(tokens.input_ids.to(self.device))[0]
        return hidden.mean(dim=0)  # the template ensemble

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return vae_encode(self.vae, images, self.resolution, self.dtype)

    def word_positions(self, key: Hashable) -> list[int]:
        """Token positions of a class's (or node's) words in its first prompt."""
        prompt, name = self.prompts(key)[0], self.key_name(key)
        ids = self.tokenizer(prompt).input_ids
        word = self.tokenizer(name, add_special_tokens=False).input_ids
        start = next((i for i in range(len(ids) - len(word) + 1) if ids[i : i + len(word)] == word), None)
        if start is None or not word:
            raise DiffclassError(f"the prompt {prompt!r} does not contain the words of {name!r}")
        return list(range(start, start + len(word)))

    @torch.no_grad()
    def word_attention(self, x_t: torch.Tensor, t: torch.Tensor, key: Hashable) -> torch.Tensor:
        """[h, w] at the latent's size: the UNet's cross-attention on the class's words when denoising one x_t
        [1, C, h, w] under that class, averaged over every cross-attention layer (each resized to the latent)."""
        maps: list[torch.Tensor] = []
        original = self.unet.attn_processors
        recorder = _WordAttention(self.word_positions(key), maps)
        self.unet.set_attn_processor({n: recorder if n.endswith("attn2.processor") else p for n, p in original.items()})
        try:
            self.predict_noise(x_t, t, self.condition([key]))
        finally:
            self.unet.set_attn_processor(original)
        h, w = x_t.shape[-2:]
        resized = []
        for m in maps:
            scale = (m.numel() / (h * w)) ** 0.5  # a layer's grid has the latent's aspect at 1/2^k of its size
            grid = m.view(1, 1, max(1, round(h * scale)), max(1, round(w * scale)))
            resized.append(torch.nn.functional.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False))
        return torch.cat(resized).mean(0)[0]

    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.unet(x_t.to(self.dtype), t, encoder_hidden_states=cond).sample
        if self.prediction_type == "v_prediction":
            a = self.alphas_cumprod.to(x_t.device)[t].to(out.dtype).view(-1, 1, 1, 1)
            out = a.sqrt() * out + (1 - a).sqrt() * x_t.to(out.dtype)
        return out
