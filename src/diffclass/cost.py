"""The machine-independent cost of one network call: multiply-accumulates and parameters."""

from __future__ import annotations


def network_size(module, example: tuple) -> tuple[int, int]:
    """(MACs, parameters) of one call of `module` on `example` (torch-pruning's operation counter)."""
    import torch_pruning as tp

    macs, params = tp.utils.count_ops_and_params(module, example)
    return int(macs), int(params)
