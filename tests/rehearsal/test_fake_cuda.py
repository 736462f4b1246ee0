"""The fake GPU's answers that the rehearsal's verdicts rest on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorDeviceMismatchError

from isengard.models.fake_cuda import fake_cuda


def test_a_parameter_moved_through_its_data_is_on_the_new_device() -> None:
    # Block swapping moves the LoRA's weights with `param.data = param.data.to(device)`: on a real tensor that moves
    # the parameter, so on a fake one it must too (else the rehearsal reports a mismatch the card never sees).
    with fake_cuda(2**30):
        layer = torch.nn.Linear(8, 8, bias=False)
        layer.weight.data = layer.weight.data.to("cuda")
        assert layer.weight.device.type == "cuda"
        assert layer(torch.empty(2, 8, device="cuda")).device.type == "cuda"
        # ... while a tensor truly left on the CPU still fails.
        with pytest.raises(FakeTensorDeviceMismatchError):
            layer(torch.empty(2, 8))


def test_weights_read_on_transformers_worker_threads_are_fake(tmp_path: Path) -> None:
    from transformers import CLIPTextConfig, CLIPTextModel

    from isengard.models.fake_cuda import write_header_only_safetensors

    config = CLIPTextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    with torch.device("meta"):
        model = CLIPTextModel(config)
    config.save_pretrained(tmp_path)
    write_header_only_safetensors(
        tmp_path / "model.safetensors", {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    )
    with fake_cuda(2**30):
        loaded = CLIPTextModel.from_pretrained(tmp_path)
        assert all(type(p).__name__ == "FakeTensor" for p in loaded.parameters())
