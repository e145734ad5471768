"""Resumable training state, saved with each checkpoint: LoRA weights, optimizer, scheduler,
random generators (Python, torch CPU and every CUDA device), the fp16 gradient scaler, step
and epoch. Tensors go to safetensors and the rest to JSON, so resuming
never unpickles anything."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file

from bioart_pipeline.common.files import atomic_dir, atomic_write_json, read_json

STATE_DIR = "state"
NEW_ROWS = "new_rows"  # pivotal tuning's vectors, beside the models' LoRA weights


@dataclass
class Resumed:
    epoch: int  # last completed epoch
    step: int
    losses: list[float]
    validation_losses: list[float]


def save_state(run_dir: Path, epoch: int, step: int, progress: Any,
               models: dict[str, torch.nn.Module], optimizer, lr_scheduler,
               rng: random.Random, scaler=None,
               new_rows: dict[str, torch.nn.Parameter] | None = None) -> None:
    """Replace the run's state folder atomically: a kill mid-save keeps the previous one.
    `new_rows`: pivotal tuning's token vectors per text encoder."""
    with atomic_dir(run_dir / STATE_DIR) as folder:
        lora = {f"{name}.{key}": tensor.detach().cpu().contiguous()
                for name, model in models.items()
                for key, tensor in get_peft_model_state_dict(model).items()}
        lora.update({f"{NEW_ROWS}.{name}": rows.detach().cpu().contiguous()
                     for name, rows in (new_rows or {}).items()})
        save_file(lora, str(folder / "lora.safetensors"))
        tensors, optimizer_meta = split_optimizer(optimizer)
        tensors["torch_rng"] = torch.get_rng_state()
        cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        tensors.update({f"cuda_rng.{i}": state for i, state in enumerate(cuda_states)})
        save_file(tensors, str(folder / "tensors.safetensors"))
        atomic_write_json(folder / "state.json", {
            "epoch": epoch, "step": step, "losses": progress.losses,
            "validation_losses": progress.validation_losses, **optimizer_meta,
            "lr_scheduler": json_safe(lr_scheduler.state_dict()),
            "python_rng": rng_to_json(rng.getstate()),
            "grad_scaler": json_safe(scaler.state_dict()) if scaler is not None else None,
        })


def load_state(run_dir: Path, models: dict[str, torch.nn.Module], optimizer, lr_scheduler,
               rng: random.Random, scaler=None,
               new_rows: dict[str, torch.nn.Parameter] | None = None) -> Resumed | None:
    """Restore everything save_state wrote; None when the run has no saved state."""
    folder = run_dir / STATE_DIR
    if not (folder / "state.json").exists():
        return None
    meta = read_json(folder / "state.json")
    lora = load_file(str(folder / "lora.safetensors"))
    for name, model in models.items():
        prefix = f"{name}."
        set_peft_model_state_dict(model, {k[len(prefix):]: v for k, v in lora.items()
                                          if k.startswith(prefix)})
    with torch.no_grad():
        for name, rows in (new_rows or {}).items():
            rows.copy_(lora[f"{NEW_ROWS}.{name}"])
    tensors = load_file(str(folder / "tensors.safetensors"))
    torch.set_rng_state(tensors.pop("torch_rng"))
    _restore_cuda_rng({k: v for k, v in tensors.items() if k.startswith("cuda_rng.")})
    restore_optimizer(optimizer, tensors, meta)
    lr_scheduler.load_state_dict(meta["lr_scheduler"])
    rng.setstate(rng_from_json(meta["python_rng"]))
    if scaler is not None and meta.get("grad_scaler"):
        scaler.load_state_dict(meta["grad_scaler"])
    return Resumed(epoch=meta["epoch"], step=meta["step"], losses=meta["losses"],
                   validation_losses=meta["validation_losses"])


def _restore_cuda_rng(saved: dict[str, torch.Tensor]) -> None:
    """Each device's generator as saved; a run resumed on fewer GPUs restores those it has."""
    if not saved or not torch.cuda.is_available():
        return
    states = [saved[f"cuda_rng.{i}"] for i in range(len(saved))]
    count = torch.cuda.device_count()
    torch.cuda.set_rng_state_all(states[:count])


def split_optimizer(optimizer: torch.optim.Optimizer
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The optimizer's state as tensors `optimizer.*` (for safetensors) and JSON-able rest."""
    state = optimizer.state_dict()
    tensors, scalars = _split_optimizer_state(state["state"])
    return tensors, {"optimizer_scalars": scalars, "param_groups": state["param_groups"]}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                      meta: dict[str, Any]) -> None:
    """Undo split_optimizer (`tensors` may hold other entries; only `optimizer.*` are read)."""
    ours = {k: v for k, v in tensors.items() if k.startswith("optimizer.")}
    optimizer.load_state_dict({"state": _join_optimizer_state(ours, meta["optimizer_scalars"]),
                               "param_groups": meta["param_groups"]})


def _split_optimizer_state(state: dict[int, dict[str, Any]]
                           ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for index, values in state.items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, scalars


def _join_optimizer_state(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]
                          ) -> dict[int, dict[str, Any]]:
    state: dict[int, dict[str, Any]] = {}
    entries = [(k.removeprefix("optimizer."), v) for k, v in tensors.items()]
    for key, value in entries + list(scalars.items()):
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return state


def json_safe(value: Any) -> Any:
    """Scheduler state dicts hold plain numbers, except lambdas (saved as None)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value if isinstance(value, int | float | str | bool | type(None)) else None


def rng_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def rng_from_json(raw: list) -> tuple:
    return raw[0], tuple(raw[1]), raw[2]
