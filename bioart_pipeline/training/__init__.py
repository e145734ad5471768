"""lora_checkpoints: the LoRA training engine (diffusers + peft + accelerate) and its export.

Dagster-free: the entrypoint runs under Dagster Pipes, on a remote GPU box, or by hand."""
