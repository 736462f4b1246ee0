"""Block offloading: the transformer's blocks live in CPU memory and visit the GPU one at a time, around their forward.

The last memory profile (`nf4-offload`), for cards below 12 GB, as sd-scripts' and ai-toolkit's block swapping do.
What stays on the GPU: everything outside the blocks (embedders, final norm and projection: small) and every
trainable parameter (the LoRA weights, which the optimizer updates there). Each block's frozen weights are kept once
in CPU memory (pinned when a GPU is there, so copies are asynchronous) and copied to the GPU by a hook just before
the block runs; a hook after it drops the GPU copy again.

Backward: with gradient checkpointing the block runs again inside the backward pass, so the hooks bring its weights
back for exactly the span its backward needs them; the autograd graph holds the GPU copy until then. That re-run
does not always reach the hook after the block: PyTorch's checkpoint stops recomputing, by raising, as soon as it
has every tensor the backward needs (`set_checkpoint_early_stop`, on by default), so the block would keep its GPU
copy in place after its backward, and by the end of the backward every block would be on the GPU. Bringing a block
in therefore first drops whichever other block is still there: at most the block running and the one whose backward
just finished hold GPU copies. Without
checkpointing every block's copy would stay referenced by the graph until the backward: the trainer therefore always
checkpoints with this profile.

diffusers' group offloading (`apply_group_offloading`) does the same for inference, but it swaps the `.data` of
every parameter of a group, trainable ones included, which breaks their gradients' device; this module keeps the
trainable parameters where the optimizer is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

BLOCK_LISTS = ("transformer_blocks", "single_transformer_blocks")


def tensor_bytes(tensor: torch.Tensor) -> int:
    """Bytes a tensor occupies, looking inside tensor subclasses (quantized weights) at what they really store."""
    flatten = getattr(type(tensor), "__tensor_flatten__", None)
    if flatten is not None and type(tensor) not in (torch.Tensor, torch.nn.Parameter):
        names, _ctx = tensor.__tensor_flatten__()  # type: ignore[attr-defined]
        return sum(tensor_bytes(getattr(tensor, name)) for name in names)
    return tensor.numel() * tensor.element_size()


@dataclass
class _Slot:
    """One frozen tensor of a block: its module, its name there, and its resident CPU copy."""

    module: torch.nn.Module
    name: str
    is_buffer: bool
    cpu: torch.Tensor


@dataclass
class BlockSwap:
    """The hooks of one transformer; `moves` counts block visits to the execution device (tests and logs)."""

    transformer: torch.nn.Module
    device: torch.device
    slots: dict[int, list[_Slot]] = field(default_factory=dict)
    handles: list[Any] = field(default_factory=list)
    moves: int = 0
    on_device: dict[int, torch.nn.Module] = field(default_factory=dict)  # blocks whose GPU copy is in place

    def onload(self, block: torch.nn.Module, *_args: Any) -> None:
        # A block a stopped recomputation left on the device goes first (see the module's docstring).
        for other in [b for key, b in self.on_device.items() if key != id(block)]:
            self.offload(other)
        for slot in self.slots[id(block)]:
            self._put(slot, slot.cpu.detach().to(self.device, non_blocking=True))
        self.on_device[id(block)] = block
        self.moves += 1

    def offload(self, block: torch.nn.Module, *_args: Any) -> None:
        # The CPU copy never changed (frozen), so dropping the device copy is all that is needed.
        for slot in self.slots[id(block)]:
            self._put(slot, slot.cpu)
        self.on_device.pop(id(block), None)

    @staticmethod
    def _put(slot: _Slot, value: torch.Tensor) -> None:
        if slot.is_buffer:
            slot.module._buffers[slot.name] = value
        elif isinstance(value, torch.nn.Parameter):
            slot.module._parameters[slot.name] = value
        else:
            slot.module._parameters[slot.name] = torch.nn.Parameter(value, requires_grad=False)

    def detach(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def _pinned(tensor: torch.Tensor) -> torch.Tensor:
    """Page-locked, so copies to the GPU run asynchronously; a tensor subclass that cannot pin stays pageable."""
    try:
        return tensor.pin_memory()
    except (RuntimeError, NotImplementedError, TypeError):
        return tensor


def _frozen_slots(block: torch.nn.Module, pin: bool) -> list[_Slot]:
    slots = []
    for module in block.modules():
        for name, param in list(module._parameters.items()):
            if param is not None and not param.requires_grad:
                cpu = param.detach().to("cpu")
                resident = torch.nn.Parameter(_pinned(cpu) if pin else cpu, requires_grad=False)
                slots.append(_Slot(module, name, False, resident))
        for name, buffer in list(module._buffers.items()):
            if buffer is not None:
                cpu = buffer.to("cpu")
                slots.append(_Slot(module, name, True, _pinned(cpu) if pin else cpu))
    return slots


def transformer_blocks(transformer: torch.nn.Module) -> list[torch.nn.Module]:
    blocks: list[torch.nn.Module] = []
    for name in BLOCK_LISTS:
        blocks.extend(getattr(transformer, name, None) or [])
    return blocks


def attach_block_swap(transformer: torch.nn.Module, device: torch.device) -> BlockSwap:
    """Place `transformer` for training or inference on `device` with its blocks' frozen weights in CPU memory.

    Call after the LoRA is added (its parameters must be known as trainable). Returns the swap, whose hooks stay
    attached for the model's lifetime.
    """
    blocks = transformer_blocks(transformer)
    in_blocks = {id(p) for block in blocks for p in _tensors(block)}
    # Everything outside the blocks, and every trainable parameter, lives on the device.
    for module in transformer.modules():
        for name, param in list(module._parameters.items()):
            if param is None:
                continue
            if param.requires_grad:
                param.data = param.data.to(device)  # the same Parameter object: the optimizer's references hold
            elif id(param) not in in_blocks:
                # A new Parameter: quantized weights are tensor subclasses, whose `.data` cannot be swapped.
                module._parameters[name] = torch.nn.Parameter(param.detach().to(device), requires_grad=False)
        for name, buffer in list(module._buffers.items()):
            if buffer is not None and id(buffer) not in in_blocks:
                module._buffers[name] = buffer.to(device)
    swap = BlockSwap(transformer=transformer, device=device)
    pin = device.type == "cuda"
    for block in blocks:
        swap.slots[id(block)] = _frozen_slots(block, pin)
        for slot in swap.slots[id(block)]:
            BlockSwap._put(slot, slot.cpu)
        swap.handles.append(block.register_forward_pre_hook(swap.onload))
        swap.handles.append(block.register_forward_hook(swap.offload))
    return swap


def _tensors(module: torch.nn.Module) -> Iterable[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()
