"""Zero-shot diffusion classification with flow-matching text-to-image transformers (Stable Diffusion 3 / 3.5).

SD3 noises by x_s = (1 - s) x0 + s eps and its transformer predicts the velocity v = eps - x0. The scorer, the
noise bank, calibration, replay and every strategy speak DDPM's x_t = sqrt(a) x0 + sqrt(1 - a) eps, and the two
are the same process up to a scale: x_s / c with c = sqrt((1 - s)^2 + s^2) is x_t with sqrt(a) = (1 - s) / c.
So the backbone exposes alphas_cumprod derived from the scheduler's (shifted) sigmas, and `predict_noise` turns
the velocity into eps = x_s + (1 - s) v. Errors are taken on eps, like every other backbone, so that they mean
the same thing across models and timesteps; the eps error is the velocity error times (1 - s)^2, a weighting the
`weighting` option can change. Timestep index t in [0, 1000) maps to the scheduler's sigma (with its shift);
the transformer is called with timestep = sigma x 1000, as the pipeline does.

Text embeddings come from diffusers' own `StableDiffusion3Pipeline.encode_prompt` (two CLIP encoders with
projection, T5 when the folder has one, zeros in its place when not, as the pipeline does), once per class.
The T5 token count is the pipeline's default (256) unless a diffclass-saved folder stores another (`text_tokens`,
which a tiny model without T5 sets low to train fast).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel

from diffclass.backbones.base import BACKBONES
from diffclass.backbones.latent import load_component, public_config, quiet_hub_libraries, resolve_dtype, vae_encode
from diffclass.backbones.prompts import ONE_TEMPLATE, PromptConditioned, load_prompted
from diffclass.errors import DiffclassError
from diffclass.hub import ModelInfo


def _is_sd3_folder(folder: Path) -> bool:
    return (folder / "transformer").is_dir() and (folder / "text_encoder_2").is_dir()


@BACKBONES.register(
    "stable_diffusion3",
    help="zero-shot flow-matching text-to-image transformer, SD3 / 3.5 (sd3:HUB_ID or a pipeline folder)",
    prefix="sd3",
    detect=_is_sd3_folder,
    parts=("transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"),
    told_classes=True,
    text=True,
)
def _load(
    source, *, device="cpu", class_names=None, templates=None, dtype="float32", info=None
) -> StableDiffusion3Backbone:
    return load_prompted(StableDiffusion3Backbone, source, class_names, templates, device, dtype, info)


def flow_alphas_cumprod(sigmas: torch.Tensor) -> torch.Tensor:
    """The DDPM alphas_cumprod of the same process as x_s = (1 - s) x0 + s eps, per timestep index."""
    sigmas = sigmas.to(torch.float64)
    return (1 - sigmas) ** 2 / ((1 - sigmas) ** 2 + sigmas**2)


class StableDiffusion3Backbone(PromptConditioned):
    def __init__(
        self,
        pipeline,
        class_names: Sequence[str],
        templates: Sequence[str] | dict[str, Sequence[str]] = ONE_TEMPLATE,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        source: str = "",
        text_tokens: int = 256,
    ):
        self.device = torch.device(device)
        self.dtype = dtype
        self.pipeline = pipeline.to(self.device)
        self.transformer = pipeline.transformer.eval()
        self.vae = pipeline.vae.eval()
        scheduler = pipeline.scheduler
        if scheduler.config.get("use_dynamic_shifting"):
            raise DiffclassError("schedulers with resolution-dependent shifts (FLUX) are not supported; SD3 is")
        self.sigmas = scheduler.sigmas.flip(0).to(torch.float64)  # ascending: index t is the t-th noise level
        self.num_train_timesteps = scheduler.config.num_train_timesteps
        self.alphas_cumprod = flow_alphas_cumprod(self.sigmas)
        self.resolution = self.transformer.config.sample_size * pipeline.vae_scale_factor
        self._start_prompts(templates)
        self.info = ModelInfo(
            backbone="stable_diffusion3",
            class_names=list(class_names),
            image_size=self.resolution,
            channels=3,
            scheduler=public_config(scheduler),
            dataset=None,
            training=dict(source=str(source)),
            templates=self.stored_templates(templates),
            text_tokens=text_tokens,
        )

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        class_names: Sequence[str],
        templates=ONE_TEMPLATE,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> StableDiffusion3Backbone:
        """A hub id (needs the network or a warm cache) or a local SD3 pipeline folder; T5 (text_encoder_3/) is
        loaded when the folder has it (a diffclass-saved folder's T5 token count is restored by `adopt_saved`)."""
        quiet_hub_libraries()  # before the pipeline's import, which warns about image processors it does not need
        from diffusers import StableDiffusion3Pipeline
        from transformers import CLIPTextModelWithProjection, CLIPTokenizer, T5EncoderModel, T5TokenizerFast

        torch_dtype = resolve_dtype(dtype, device)
        with_t5 = not Path(source).is_dir() or (Path(source) / "text_encoder_3").is_dir()
        pipeline = StableDiffusion3Pipeline(
            transformer=load_component(SD3Transformer2DModel, source, "transformer", "transformer", torch_dtype),
            scheduler=load_component(FlowMatchEulerDiscreteScheduler, source, "scheduler", "noise schedule"),
            vae=load_component(AutoencoderKL, source, "vae", "VAE", torch_dtype),
            text_encoder=load_component(
                CLIPTextModelWithProjection, source, "text_encoder", "text encoder", torch_dtype
            ),
            tokenizer=load_component(CLIPTokenizer, source, "tokenizer", "tokenizer"),
            text_encoder_2=load_component(
                CLIPTextModelWithProjection, source, "text_encoder_2", "second text encoder", torch_dtype
            ),
            tokenizer_2=load_component(CLIPTokenizer, source, "tokenizer_2", "second tokenizer"),
            text_encoder_3=load_component(T5EncoderModel, source, "text_encoder_3", "T5 encoder", torch_dtype)
            if with_t5
            else None,
            tokenizer_3=load_component(T5TokenizerFast, source, "tokenizer_3", "T5 tokenizer") if with_t5 else None,
        )
        pipeline.set_progress_bar_config(disable=True)
        return cls(pipeline, class_names, templates, device, torch_dtype, source)

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.transformer

    def save_pretrained(self, folder: str | Path) -> None:
        """An SD3 pipeline folder (transformer/, vae/, text encoders, tokenizers, scheduler/) that loads back."""
        self.pipeline.save_pretrained(folder, safe_serialization=True)
        self.info.save(Path(folder))

    @torch.no_grad()
    def _embed(self, key: Hashable) -> torch.Tensor:
        """The prompt embeddings and pooled projections of the key's prompts (averaged over its templates),
        flattened into one row: [tokens x joint dim + pooled dim]."""
        prompts = self.prompts(key)
        embeds, _, pooled, _ = self.pipeline.encode_prompt(
            prompts,
            prompts,
            prompts,
            device=self.device,
            do_classifier_free_guidance=False,
            max_sequence_length=self.info.text_tokens,
        )
        return torch.cat([embeds.mean(0).flatten(), pooled.mean(0)]).to(self.dtype)

    def _unpack(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.transformer.config.pooled_projection_dim
        embeds = cond[:, :-pooled].reshape(len(cond), -1, self.transformer.config.joint_attention_dim)
        return embeds, cond[:, -pooled:]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return vae_encode(self.vae, images, self.resolution, self.dtype)

    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """eps from the predicted velocity, for the DDPM-scaled x_t of timestep index t."""
        sigma = self.sigmas.to(x_t.device)[t].view(-1, 1, 1, 1)
        x_s = (x_t.double() * ((1 - sigma) ** 2 + sigma**2).sqrt()).to(self.dtype)
        embeds, pooled = self._unpack(cond)
        velocity = self.transformer(
            hidden_states=x_s,
            timestep=(sigma.flatten() * self.num_train_timesteps).to(self.dtype),
            encoder_hidden_states=embeds,
            pooled_projections=pooled,
            return_dict=False,
        )[0]
        return x_s + (1 - sigma).to(velocity.dtype) * velocity
