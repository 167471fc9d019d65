"""Fine-tuning a student on adapted (or, for the Static baseline, expert) data with TRL.

- `config`: paper defaults, flat recipe YAML -> `trl.SFTConfig`, CLI overrides;
- `data`: `messages` rows from an adapt output / Hub dataset / expert source, validation slice;
- `trainer`: `SFTTrainer` with the loss on the assistant turn only;
- `select`: score each epoch's checkpoint on the validation slice, keep the best;
- `run`: the whole run, `training_summary.json`.

Needs the `train` extra (trl, peft). Modules import trl / torch lazily.
"""
