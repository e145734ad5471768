"""xy_plot_evaluation: checkpoints x LoRA weights on fixed prompts and seeds, model-free
metrics per cell, and a recommended checkpoint and weight range."""
