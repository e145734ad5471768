"""lora_checkpoints: the LoRA training engine (diffusers + peft + accelerate) and its export.

Dagster-free: a TrainingJob runs through compute/entrypoint.py under Dagster Pipes, on a
remote GPU box, or by hand."""
