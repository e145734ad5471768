"""Training objectives: what the denoiser is shown and what it must predict.

- `NoisePrediction` (SD 1.5, SDXL): the base's DDPM noise schedule; the target is the noise
  (epsilon) or the velocity (v-prediction bases), weighted by min-SNR-gamma.
- `FlowMatching` (Flux.1): rectified flow, x_t = (1 - s) x0 + s noise with the target
  noise - x0; s drawn logit-normal and shifted towards noise by the image's token count, with
  the base scheduler's shift parameters (Flux.1-dev's resolution-dependent shift, as kohya's
  `flux_shift` sampling and SimpleTuner train it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr

PREDICTION_TYPES = ("epsilon", "v_prediction")


@dataclass
class Noised:
    noisy: torch.Tensor
    timesteps: torch.Tensor  # what the denoiser takes: DDPM steps, or flow-matching s in [0, 1]
    target: torch.Tensor
    loss_weights: torch.Tensor


class NoisePrediction:
    def __init__(self, scheduler_config: dict, min_snr_gamma: float):
        self.scheduler = DDPMScheduler.from_config(scheduler_config)
        check_prediction_type(self.scheduler)
        self.min_snr_gamma = min_snr_gamma
        self.steps = self.scheduler.config.num_train_timesteps

    def sample(self, x0: torch.Tensor, noise: torch.Tensor) -> Noised:
        timesteps = torch.randint(0, self.steps, (x0.shape[0],), device=x0.device)
        return self._at(x0, noise, timesteps, self._weights(timesteps))

    def fixed(self, x0: torch.Tensor, noise: torch.Tensor, positions: torch.Tensor) -> Noised:
        """Each sample at its position in (0, 1) of the schedule (validation: the same every
        time)."""
        t = (50 + positions.double() * (self.steps - 100)).long().to(x0.device)
        return self._at(x0, noise, t, torch.ones(x0.shape[0]))

    def _at(self, x0, noise, timesteps, weights) -> Noised:
        target = (self.scheduler.get_velocity(x0, noise, timesteps) if self._v_prediction
                  else noise)
        return Noised(self.scheduler.add_noise(x0, noise, timesteps), timesteps, target, weights)

    @property
    def _v_prediction(self) -> bool:
        return self.scheduler.config.prediction_type == "v_prediction"

    def _weights(self, timesteps: torch.Tensor) -> torch.Tensor:
        """Min-SNR-gamma loss weights (Hang et al. 2023); 1.0 everywhere when gamma is 0."""
        if not self.min_snr_gamma:
            return torch.ones_like(timesteps, dtype=torch.float32)
        snr = compute_snr(self.scheduler, timesteps)
        clipped = torch.clamp(snr, max=self.min_snr_gamma)
        return clipped / (snr + 1) if self._v_prediction else clipped / snr


class FlowMatching:
    def __init__(self, scheduler_config: dict):
        self.config = scheduler_config

    def sample(self, x0: torch.Tensor, noise: torch.Tensor) -> Noised:
        logit_normal = torch.sigmoid(torch.randn(x0.shape[0], device=x0.device))
        return self._at(x0, noise, self._shifted(logit_normal, x0))

    def fixed(self, x0: torch.Tensor, noise: torch.Tensor, positions: torch.Tensor) -> Noised:
        return self._at(x0, noise, self._shifted(
            (0.05 + 0.9 * positions.double()).float().to(x0.device), x0))

    def _shifted(self, s: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """s moved towards noise: by mu from the token count (dynamic shifting, Flux.1-dev),
        else by the fixed `shift` (SD3-style schedulers)."""
        config = self.config
        if config.get("use_dynamic_shifting"):
            tokens = (x0.shape[-2] // 2) * (x0.shape[-1] // 2)  # 2x2 latent patches
            slope = ((config["max_shift"] - config["base_shift"])
                     / (config["max_image_seq_len"] - config["base_image_seq_len"]))
            mu = config["base_shift"] + slope * (tokens - config["base_image_seq_len"])
            return math.exp(mu) / (math.exp(mu) + (1 / s - 1))
        shift = config.get("shift", 1.0)
        return shift * s / (1 + (shift - 1) * s)

    @staticmethod
    def _at(x0: torch.Tensor, noise: torch.Tensor, s: torch.Tensor) -> Noised:
        blend = s.view(-1, *([1] * (x0.dim() - 1)))
        return Noised(noisy=(1 - blend) * x0 + blend * noise, timesteps=s,
                      target=noise - x0, loss_weights=torch.ones_like(s))


def objective_for(pipe, flow_matching: bool, min_snr_gamma: float
                  ) -> NoisePrediction | FlowMatching:
    config = dict(pipe.scheduler.config)
    return FlowMatching(config) if flow_matching else NoisePrediction(config, min_snr_gamma)


def check_prediction_type(noise_scheduler) -> None:
    """Refuse a base whose scheduler predicts anything else: training it as epsilon would
    silently teach the wrong target."""
    kind = noise_scheduler.config.prediction_type
    if kind not in PREDICTION_TYPES:
        raise ValueError(f"the base model's scheduler has prediction_type {kind!r}; training "
                         f"supports {list(PREDICTION_TYPES)}. Check the base model's "
                         "scheduler/scheduler_config.json")
