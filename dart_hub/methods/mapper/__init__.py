"""The mapper method: an (optionally GRPO-trained) rewriting model adapts expert solutions to
the student. Our design after METHOD-MAPPER.md section 6, not a reproduction of the paper
("Learning to Adapt SFT Data for Better Reasoning Generalization"), whose formulas are unknown.

- `rewards`: the weighted TRL reward functions (correctness gate, alignment, detectors).
- `scorer`: the student's likelihood of a rewrite (transformers on its own device, or vLLM
  prompt log-probabilities).
- `method`: `dart-hub adapt --method mapper` (synthesis: n rewrites, keep the best verified one).
- `train`: `dart-hub mapper train` (TRL GRPOTrainer on the mapper).
"""

from dart_hub.methods.mapper.method import Mapper, MapperConfig, MapperPrompts, load_mapper_prompts
from dart_hub.methods.mapper.rewards import MapperRewards, RewardConfig

__all__ = ["Mapper", "MapperConfig", "MapperPrompts", "MapperRewards", "RewardConfig", "load_mapper_prompts"]
