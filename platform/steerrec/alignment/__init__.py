"""Preference alignment of LLM recommenders: SFT, DPO, S-DPO, SimPO, RecPO.

One responsibility per module, no import cycles:
- losses.py: the losses as pure functions (torch only, no Ray) and the one loss registry
  (function, config section, inputs); loss_configs.py: each loss's checked settings.
- data.py: candidate-selection examples; examples.py: loading, per-epoch order, sharding,
  candidate picking.
- model.py: the causal LM (tiny / GGUF / HF), LoRA, candidate log-probs, generation.
- config.py: AlignConfig; task.py: the SFT and preference Tasks run by steerrec.train.loop.
- train.py: train_sft / align (local) and fit_sft / fit_align (Ray Train); sweep.py: a Tune trial.
- runs.py: the run folder (write, load); evaluate.py: HR@1, probes, tables; cli.py: the jobs' body.

Kept free of imports so that importing a submodule pulls in only what it needs.
"""
