"""Tiny Stable Diffusion and DiT components with random weights, saved as diffusers folders.

For tests and CPU demos: the same classes as the published models, small enough to build and train offline (the
tokenizer is written from a character vocabulary, so nothing comes from a hub)."""

import json
import string

import torch
from diffusers import AutoencoderKL, DDPMScheduler, DiTTransformer2DModel, UNet2DConditionModel


def tiny_vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=8,
        sample_size=16,
    )  # fmt: skip


def write_tokenizer(folder) -> None:
    """A CLIP BPE tokenizer whose vocabulary is single characters (no merges): enough to tell prompts apart."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    chars = string.ascii_lowercase + string.digits + ".,'-"
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({f"{c}</w>": len(vocab) + i for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=24)
    tokenizer.save_pretrained(folder)


def save_tiny_stable_diffusion(folder, prediction_type="epsilon", seed=0):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    write_tokenizer(folder / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37,
                                        num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=24,
                                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                        pad_token_id=tokenizer.pad_token_id))  # fmt: skip
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
    )  # fmt: skip
    text.save_pretrained(folder / "text_encoder")
    unet.save_pretrained(folder / "unet")
    tiny_vae().save_pretrained(folder / "vae")
    DDPMScheduler(prediction_type=prediction_type).save_pretrained(folder / "scheduler")
    return folder


def save_tiny_dit(folder, num_classes=10, seed=0):
    torch.manual_seed(seed)
    DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=2, sample_size=8,
        patch_size=2, num_embeds_ada_norm=num_classes, norm_num_groups=8,
    ).save_pretrained(folder / "transformer")  # fmt: skip
    tiny_vae().save_pretrained(folder / "vae")
    DDPMScheduler().save_pretrained(folder / "scheduler")
    return folder
