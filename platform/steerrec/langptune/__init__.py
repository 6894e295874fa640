"""LangPTune (langptune-profiles): an LLM writes a user profile from a session's history, a
text-embedding recommender ranks items by cosine similarity to the profile, RLSO trains the
policy from the recommender's reward and InfoNCE trains the embedder.

One responsibility per module, no import cycles:
- sessions.py: 4 distinct history items + 1 upcoming, from the data model; the policy prompt.
- reward.py: ranking rewards (NDCG/MRR@k by cosine), the KL penalty, the cut-profile reward
  and per-batch whitening (pure numpy/torch).
- embedder.py: the trainable sentence embedder (steerrec.embed's models) and its vectors.
- rollouts.py: two sampled profiles per session on the LLM engine interface, and their
  sequence log-probs under the policy, the sampling policy and the reference.
- config.py: each phase's settings; policy_task.py / embedder_task.py: the RLSO policy
  phase and the InfoNCE embedder phase as steerrec.train.loop Tasks.
- train.py: the K-outer-iteration alternation and the paper's variants, resumable per
  outer iteration; evaluate.py: the test table and the Random / MostPop baselines;
  runs.py: the run folder; sweep.py: one trial of tune/sweep_profile_length.py.
- ray_program.py: the alternation as one Ray program (a trainer actor, a generator actor
  group, the adapter handed over after each policy phase); vllm_writer.py: the generators
  as vLLM engines with a LoRA request per iteration.

The losses themselves (RLSO, InfoNCE) live with the other losses in
steerrec.alignment.rl_losses and are registered in steerrec.alignment.losses.
Kept free of imports so that importing a submodule pulls in only what it needs.
"""
