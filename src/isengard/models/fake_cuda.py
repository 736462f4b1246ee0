"""A fake CUDA GPU for rehearsing the production path at full size on a CPU-only PyTorch build.

Under `torch._subclasses.fake_tensor.FakeTensorMode` tensors have shapes, dtypes and devices but no storage, and
every operation checks them: a CPU tensor meeting a CUDA one raises `FakeTensorDeviceMismatchError`. A CPU-only
build still cannot answer a few questions the production code asks of a GPU; `fake_cuda()` answers exactly those,
each for the reason written beside it, and nothing else:

- the CUDA *device guard*: Python indexing (`x[:, None]`) and fused attention take a device guard for the tensor's
  device, which a CPU build has not registered ("PyTorch is not linked with support for cuda devices").
  PyTorch ships a `FakeGuardImpl<CUDA>` for this case (`torch._C._ensureCUDADeviceGuardSet`), but only swaps it in
  for a registered CUDA guard that sees no device; with none registered it does nothing, so it is put in the
  registry's CUDA slot directly (one pointer, see `_install_fake_guard`);
- `torch.cuda.is_available`, `mem_get_info`, `empty_cache`, `synchronize`: asked by the planner and the loaders;
- file reads: the weight files of a rehearsal model folder hold only their safetensors header (sparse files of the
  true size); reading one gives fake tensors of the header's shapes and dtypes (diffusers' `load_state_dict`,
  transformers' `safe_open`);
- model skeletons: diffusers builds a model on the meta device before reading its weights into it, and accelerate
  re-wraps each weight in the skeleton parameter's class; built under the fake mode, that class would be the fake
  tensor class, which cannot be re-wrapped, so skeletons are built outside the mode (`_real_skeletons`), as on a
  real machine;
- moving a module (`module.to`): PyTorch swaps each fake parameter in place (`torch.utils.swap_tensors`), which
  refuses a tensor that has weak references, and the fake mode keeps one to every parameter it made; moved
  fake parameters are therefore put in the module as new parameters (`_apply_to_fakes`), as PyTorch did before it
  swapped;
- a parameter moved by assigning its `.data` (`param.data = param.data.to(device)`, as block swapping moves the
  LoRA's weights so the optimizer's references hold): PyTorch's `set_data` swaps the tensor's storage and device,
  but a fake tensor's device is a Python attribute (`fake_device`) that `set_data` never sees, so the parameter
  would go on claiming its old device; `_FAKE_DATA` carries the new value's device over, as a real tensor moves;
- transformers' weight loading in worker threads: the fake mode is thread-local, so a weight read on a worker thread
  would be a real (uninitialized) CPU tensor that later meets fake ones; loading is made sequential
  (`HF_DEACTIVATE_ASYNC_LOAD`, transformers' own switch);
- matmul dtypes: CUDA's matrix kernels (cuBLAS) refuse operands of different dtypes ("expected mat1 and mat2 to
  have the same dtype"), but fake tensors, like the meta kernels they run, promote them; `_CudaMatmulDtypes`
  refuses them as the card would;
- pinned host memory (`Tensor.pin_memory`, block offloading's CPU copies): the pinned allocator is CUDA's, and fake
  tensors do not implement pinning; a pinned copy is the same tensor to every check here, so it is returned as is;
- quantizing a weight (torchao's `NF4Tensor.from_tensor`, `Int8Tensor.from_hp`): on fake tensors the result depends
  only on the weight's shape, dtype and device, yet NF4's double quantization is a few dozen Python-dispatched
  operations per weight; FLUX.1 has 500 linears of about ten shapes. Each shape is quantized once by torchao's own
  code; a weight of the same shape gets fresh fake tensors of exactly that result's layout (`_QuantizedByShape`);
- attention: the CPU's score-matrix attention is priced as the fused kernels a GPU runs (memory_trace.py).

What no patch can answer: the autograd engine of a CPU-only build asks the accelerator API for the current stream
of a CUDA gradient (`InputBuffer::add` -> `at::accelerator::getCurrentStream`: "Cannot access accelerator device
when none is available"), so a backward pass cannot run on fake CUDA tensors; the rehearsal runs its backward on the
meta device instead (see rehearsal.py and docs/REHEARSAL.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# c10's DeviceType numbering (c10/core/DeviceType.h): the registry of device guards is indexed by it.
CUDA_DEVICE_TYPE = 1
# Two symbols of libc10.so: the guard registry (exported), and the static FakeGuardImpl<CUDA> that
# `ensureCUDADeviceGuardSet` would install (local; constant-initialized, so its vtable is in place from load time).
_REGISTRY_SYMBOL = b"_ZN3c104impl26device_guard_impl_registryE"
_FAKE_GUARD_SYMBOL = b"_ZZN3c104impl24ensureCUDADeviceGuardSetEvE15fake_cuda_guard"
# safetensors' dtype names, as in a header.
_SAFETENSORS_DTYPES = {
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "F32": torch.float32,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
# The modules whose file reads are answered (imported before the patches, see fake_cuda).
_LOADERS = ("diffusers.models.model_loading_utils", "diffusers.models.modeling_utils", "transformers.modeling_utils")
_DTYPE_NAMES = {dtype: name for name, dtype in _SAFETENSORS_DTYPES.items()}


class FakeCudaUnavailable(RuntimeError):
    """This torch build has no known place for the fake CUDA guard."""


def _elf_symbols(path: Path, wanted: set[bytes]) -> dict[bytes, int]:
    """Addresses (relative to the library's load base) of some symbols of an ELF64 library's full symbol table."""
    data = path.read_bytes()
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    found: dict[bytes, int] = {}
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind != 2:  # SHT_SYMTAB
            continue
        strings = sections[link][4]
        for start in range(offset, offset + size, entsize):
            name_at, _st_info, _other, _shndx, value, _size = struct.unpack_from("<IBBHQQ", data, start)
            end = data.index(b"\0", strings + name_at)
            name = data[strings + name_at : end]
            if name in wanted:
                found[name] = value
    return found


def _install_fake_guard() -> None:
    """Put PyTorch's FakeGuardImpl<CUDA> into the device-guard registry's CUDA slot (idempotent).

    A GPU build has a real guard there: nothing is changed."""
    if torch.version.cuda is not None:
        return
    path = Path(torch.__file__).parent / "lib" / "libc10.so"
    library = ctypes.CDLL(str(path))
    registry = (ctypes.c_void_p * 32).in_dll(library, _REGISTRY_SYMBOL.decode())
    if registry[CUDA_DEVICE_TYPE]:
        return
    symbols = _elf_symbols(path, {_REGISTRY_SYMBOL, _FAKE_GUARD_SYMBOL})
    if len(symbols) != 2:
        raise FakeCudaUnavailable(f"{path.name} of torch {torch.__version__} has no FakeGuardImpl<CUDA> symbol")
    base = ctypes.addressof(registry) - symbols[_REGISTRY_SYMBOL]
    registry[CUDA_DEVICE_TYPE] = base + symbols[_FAKE_GUARD_SYMBOL]


# --- Header-only weight files -------------------------------------------------------------------------------------


def write_header_only_safetensors(path: Path, tensors: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> int:
    """A safetensors file holding only its header, made as large as the real file would be (sparse: the bytes of
    the weights take no disk). Returns the size."""
    header: dict[str, Any] = {}
    offset = 0
    for name, (shape, dtype) in tensors.items():
        size = int(torch.Size(shape).numel()) * torch.empty((), dtype=dtype).element_size()
        header[name] = {"dtype": _DTYPE_NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        handle.truncate(8 + len(encoded) + offset)
    return 8 + len(encoded) + offset


def read_header(path: str | Path) -> dict[str, tuple[list[int], torch.dtype]]:
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return {name: (entry["shape"], _SAFETENSORS_DTYPES[entry["dtype"]]) for name, entry in header.items()}


def _fake_state_dict(path: str | Path, *_args: Any, **_kwargs: Any) -> dict[str, torch.Tensor]:
    """What reading a weight file gives (CPU tensors), without the bytes: fake tensors of the header's shapes."""
    if isinstance(path, dict):
        return path
    return {name: torch.empty(shape, dtype=dtype) for name, (shape, dtype) in read_header(path).items()}


class _FakeSlice:
    def __init__(self, shape: list[int], dtype: torch.dtype) -> None:
        self.shape, self.dtype = shape, dtype

    def get_shape(self) -> list[int]:
        return list(self.shape)

    def get_dtype(self) -> str:
        return _DTYPE_NAMES[self.dtype]

    def __getitem__(self, index: Any) -> torch.Tensor:
        return torch.empty(self.shape, dtype=self.dtype)[index]


class _FakeSafeOpen:
    """transformers' view of a safetensors file (`safe_open`), answered from the header."""

    def __init__(self, path: str | Path, *args: Any, **kwargs: Any) -> None:
        self.entries = read_header(path)

    def __enter__(self) -> _FakeSafeOpen:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def keys(self) -> list[str]:
        return list(self.entries)

    def metadata(self) -> dict[str, str]:
        return {"format": "pt"}

    def get_slice(self, name: str) -> _FakeSlice:
        return _FakeSlice(*self.entries[name])

    def get_tensor(self, name: str) -> torch.Tensor:
        shape, dtype = self.entries[name]
        return torch.empty(shape, dtype=dtype)


@contextlib.contextmanager
def _real_skeletons() -> Iterator[None]:
    from diffusers.configuration_utils import ConfigMixin
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    original = ConfigMixin.from_config.__func__  # type: ignore[attr-defined]

    def from_config(cls: Any, *args: Any, **kwargs: Any) -> Any:
        with unset_fake_temporarily():
            return original(cls, *args, **kwargs)

    with mock.patch.object(ConfigMixin, "from_config", classmethod(from_config)):
        yield


class _CudaMatmulDtypes(TorchDispatchMode):
    """Floating-point operands of a matrix product must share one dtype, as CUDA's kernels require."""

    OPS = frozenset(
        {
            torch.ops.aten.mm.default,
            torch.ops.aten.addmm.default,
            torch.ops.aten.bmm.default,
            torch.ops.aten.baddbmm.default,
            torch.ops.aten.convolution.default,
        }
    )

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in self.OPS:
            dtypes = {a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()}
            if len(dtypes) > 1:
                names = ", ".join(sorted(str(d).removeprefix("torch.") for d in dtypes))
                raise RuntimeError(f"{func}: expected operands of one dtype, got {names} (CUDA refuses mixed dtypes)")
        return func(*args, **kwargs)


def _apply_to_fakes(module: torch.nn.Module, fn: Any, recurse: bool = True) -> torch.nn.Module:
    if recurse:
        for child in module.children():
            child._apply(fn)
    for key, param in module._parameters.items():
        if param is None:
            continue
        with torch.no_grad():
            applied = fn(param)
        if applied is not param:
            module._parameters[key] = torch.nn.Parameter(applied, requires_grad=param.requires_grad)
    for key, buffer in module._buffers.items():
        if buffer is not None:
            module._buffers[key] = fn(buffer)
    return module


def _set_data(self: Any, value: torch.Tensor) -> None:
    from torch._subclasses.fake_tensor import FakeTensor

    _TENSOR_DATA.__set__(self, value)
    if isinstance(value, FakeTensor):
        self.fake_device = value.fake_device


_TENSOR_DATA: Any = vars(torch._C.TensorBase)["data"]  # the C getset descriptor of `.data`
_FAKE_DATA = property(_TENSOR_DATA.__get__, _set_data)


def _fresh_like(tensor: torch.Tensor) -> torch.Tensor:
    """New (fake) tensors of `tensor`'s layout, through tensor subclasses' inner tensors."""
    if type(tensor) not in (torch.Tensor, torch.nn.Parameter) and hasattr(tensor, "__tensor_flatten__"):
        names, ctx = tensor.__tensor_flatten__()
        inner = {name: _fresh_like(getattr(tensor, name)) for name in names}
        return type(tensor).__tensor_unflatten__(inner, ctx, tensor.shape, tensor.stride())  # type: ignore[attr-defined]
    return torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device=tensor.device)


@contextlib.contextmanager
def _quantized_by_shape() -> Iterator[None]:
    """torchao's quantizing constructors, run once per (shape, dtype, device, arguments) under the fake mode."""
    from torchao.quantization import Int8Tensor, NF4Tensor

    made: dict[Any, torch.Tensor] = {}

    def memoized(cls: Any, name: str) -> Any:
        original = getattr(cls, name)

        def constructor(klass: Any, tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            key = (klass, name, tuple(tensor.shape), tensor.dtype, str(tensor.device), repr(args), repr(kwargs))
            if key not in made:
                made[key] = original(tensor, *args, **kwargs)
                return made[key]
            return _fresh_like(made[key])

        return mock.patch.object(cls, name, classmethod(constructor))

    with memoized(NF4Tensor, "from_tensor"), memoized(Int8Tensor, "from_hp"):
        yield


# --- The fake GPU -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def fake_cuda(gpu_bytes: int) -> Iterator[Any]:
    """Fake tensors with a fake CUDA GPU of `gpu_bytes`: yields the FakeTensorMode (already entered)."""
    # Imported while torch still says there is no GPU: their import-time probes (bitsandbytes') must see the truth.
    for name in _LOADERS:
        importlib.import_module(name)
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

    from isengard.models.memory_trace import gpu_attention

    _install_fake_guard()
    with contextlib.ExitStack() as stack:
        # Real tensors met inside (meta skeletons, constants) become fake ones of their own device, so a CPU tensor
        # meeting a CUDA one still fails.
        mode = stack.enter_context(FakeTensorMode(allow_non_fake_inputs=True))
        # The production code is told a GPU exists; the fake mode itself must go on knowing there is none (it would
        # otherwise run constant tensors' moves to CUDA for real).
        stack.enter_context(mock.patch.object(FakeTensorMode, "avoid_device_init", property(lambda self: True)))
        stack.enter_context(mock.patch("torch.cuda.is_available", return_value=True))
        stack.enter_context(mock.patch("torch.cuda.device_count", return_value=1))
        stack.enter_context(mock.patch("torch.cuda.current_device", return_value=0))
        stack.enter_context(mock.patch("torch.cuda.mem_get_info", return_value=(gpu_bytes, gpu_bytes)))
        stack.enter_context(mock.patch("torch.cuda.empty_cache"))
        stack.enter_context(mock.patch.object(torch.Tensor, "pin_memory", lambda self, *args, **kwargs: self))
        stack.enter_context(mock.patch("torch.cuda.synchronize"))
        stack.enter_context(mock.patch("diffusers.models.model_loading_utils.load_state_dict", _fake_state_dict))
        stack.enter_context(mock.patch("diffusers.models.modeling_utils.load_state_dict", _fake_state_dict))
        stack.enter_context(mock.patch("transformers.modeling_utils.safe_open", _FakeSafeOpen))
        stack.enter_context(_real_skeletons())
        stack.enter_context(mock.patch.object(torch.nn.Module, "_apply", _apply_to_fakes))
        stack.enter_context(mock.patch.object(FakeTensor, "data", _FAKE_DATA))
        stack.enter_context(mock.patch.dict(os.environ, {"HF_DEACTIVATE_ASYNC_LOAD": "1"}))
        stack.enter_context(_quantized_by_shape())
        stack.enter_context(gpu_attention())
        stack.enter_context(_CudaMatmulDtypes())
        yield mode
