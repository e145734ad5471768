"""Where a GPU stage runs: the device and the dtype of its weights, resolved on the machine
that runs it (the studio may have no GPU while the worker it sends the job to does)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads where the job runs, not in the Dagster process
    import torch

DEVICES = ("auto", "cuda", "cpu")
DTYPES = ("float32", "bfloat16", "float16")  # torch's names


@dataclass(frozen=True)
class Placement:
    """device: auto (CUDA when present, else the CPU), cuda or cpu. dtype: auto (bfloat16
    on a GPU that has it, else float16; float32 on the CPU, where half precision is slower),
    or one of DTYPES. processes: how many processes train one LoRA together, one per GPU
    (data parallel; on the CPU, gloo). CUDA_VISIBLE_DEVICES picks the cards."""

    device: str = "auto"
    dtype: str = "auto"
    processes: int = 1

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {list(DEVICES)}, got {self.device!r}")
        if self.dtype != "auto" and self.dtype not in DTYPES:
            raise ValueError(f"dtype must be auto or one of {list(DTYPES)}, got {self.dtype!r}")
        if self.processes < 1:
            raise ValueError(f"processes must be at least 1, got {self.processes}")
        if self.device == "cpu" and self.dtype == "float16":
            raise ValueError("float16 needs a CUDA device; on the CPU use bfloat16 or float32")

    def torch_device(self) -> torch.device:
        import torch

        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("the compute resource asks for device cuda, but this machine "
                               "has no CUDA device (set device auto or cpu)")
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def torch_dtype(self) -> torch.dtype:
        import torch

        device = self.torch_device()
        if self.dtype == "auto":
            if device.type != "cuda":
                return torch.float32
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if self.dtype == "bfloat16" and device.type == "cuda" \
                and not torch.cuda.is_bf16_supported():
            raise RuntimeError("this GPU has no bfloat16: set dtype float16 or auto")
        return getattr(torch, self.dtype)

    def describe(self) -> str:
        processes = f", {self.processes} processes" if self.processes > 1 else ""
        return f"{self.torch_device()} {str(self.torch_dtype()).removeprefix('torch.')}" \
               f"{processes}"
