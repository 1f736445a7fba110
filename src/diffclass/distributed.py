"""Sharding an evaluation over `torchrun` ranks with torch.distributed (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_from_env(device: str = "cpu") -> tuple[int, int]:
    """(rank, world size); a plain run is rank 0 of 1. Under torchrun, joins the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank(), dist.get_world_size()


def gather_to_rank0(items: list) -> list | None:
    """Every rank's items, concatenated, on rank 0 (None elsewhere)."""
    if not dist.is_initialized():
        return items
    parts = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(items, parts, dst=0)
    return [x for part in parts for x in part] if parts is not None else None


def finish() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
