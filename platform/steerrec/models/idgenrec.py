"""IDGenRec (Tan et al. 2024): an ID generator T5 and a recommender T5 over textual IDs.

- ID generator (Sec. 2.2): item text tokens in, ID tokens out; `candidates` decodes k IDs
  per item with diverse beam search (steerrec.decoding.diverse) in a length window, which
  `steerrec.ids.textual.assign_unique_ids` (Algorithm 1) turns into unique IDs.
- Recommender (Sec. 2.4): a prompt with the history's IDs in, the next item's ID tokens
  then </s> out; `recommend` decodes under a trie of the current IDs
  (`PrefixTrie.from_sequences`: every ID ends with </s>, so an ID that is a prefix of
  another is its own leaf), so every result is an item.
- Soft IDs (Sec. 2.5.2): `soft_loss` replaces the history IDs' token embeddings by
  softmax(generator logits) x the recommender's embedding matrix, so the recommender's
  loss trains the generator.

Both T5s are built from config with random weights: no pre-trained T5 ships offline
(steerrec.models.idgenrec_text says what was looked for). They share one tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from steerrec.models.idgenrec_text import EOS_ID, PAD_ID, TOKENIZER_FILE, UNK_ID
from steerrec.models.seq2seq import (
    GenerativeRecommender,
    Persistent,
    T5StackConfig,
    cache_arg,
    check_t5_sizes,
    t5_from_sizes,
)


def _generator_sizes() -> T5StackConfig:  # t5-small's shape, the paper's generator backbone
    return T5StackConfig(num_layers=6, d_model=512, d_ff=2048, num_heads=8, d_kv=64, dropout=0.1)


def _recommender_sizes() -> T5StackConfig:
    return T5StackConfig(num_layers=6, d_model=512, d_ff=2048, num_heads=8, d_kv=64, dropout=0.1)


@dataclass
class IDGenRecConfig:
    vocab_size: int = 8000  # the tokenizer's size (len(tokenizer))
    generator: T5StackConfig = field(default_factory=_generator_sizes)
    recommender: T5StackConfig = field(default_factory=_recommender_sizes)
    max_text_tokens: int = 128  # item text the generator reads
    max_prompt_tokens: int = 512  # the recommender's prompt; the oldest IDs go first

    def __post_init__(self) -> None:
        check_t5_sizes("idgenrec.generator", self.generator)
        check_t5_sizes("idgenrec.recommender", self.recommender)
        if self.vocab_size <= UNK_ID:
            raise ValueError(f"idgenrec.vocab_size must exceed the special tokens, got {self.vocab_size}")
        if self.max_text_tokens < 2 or self.max_prompt_tokens < 8:
            raise ValueError(
                f"idgenrec.max_text_tokens must be >= 2 and max_prompt_tokens >= 8, "
                f"got {self.max_text_tokens}, {self.max_prompt_tokens}"
            )


class T5Seq2Seq(GenerativeRecommender, nn.Module):
    """One T5ForConditionalGeneration with the decoding contract of steerrec.models.seq2seq
    (step_fn, reorder, KV cache); the decoder starts from <pad> as in T5."""

    start_tokens = (PAD_ID,)

    def __init__(self, sizes: T5StackConfig, vocab_size: int) -> None:
        super().__init__()
        self.t5 = t5_from_sizes(sizes, vocab_size, PAD_ID, EOS_ID, PAD_ID)

    def embeddings(self) -> torch.Tensor:
        return self.t5.get_input_embeddings().weight  # [V, d]

    def encode(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """`input_ids` [B, S] (or `inputs_embeds` [B, S, d]) with `mask` [B, S] -> memory."""
        mask = batch["mask"]
        if "inputs_embeds" in batch:
            out = self.t5.encoder(inputs_embeds=batch["inputs_embeds"], attention_mask=mask.long())
        else:
            out = self.t5.encoder(input_ids=batch["input_ids"], attention_mask=mask.long())
        return {"memory": out.last_hidden_state, "mask": mask}

    def logits(self, state: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits [B, T, V] for `labels` [B, T] (-100 = padding)."""
        inputs = torch.cat([torch.full_like(labels[:, :1], PAD_ID), labels[:, :-1]], dim=1).clamp(min=0)
        return self.decode(inputs, state["memory"], state["mask"])

    def forward(self, batch: dict[str, Any], neg_weight: float = 0.0) -> torch.Tensor:
        """Token cross-entropy of `labels` [B, T] given the batch's input (Eq. 4)."""
        logits = self.logits(self.encode(batch), batch["labels"])
        return F.cross_entropy(logits.flatten(0, 1).float(), batch["labels"].flatten(), ignore_index=-100)

    def decode(self, inputs: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.t5(encoder_outputs=(memory,), attention_mask=mask.long(), decoder_input_ids=inputs, use_cache=False)
        return out.logits

    def decode_step(self, inputs: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor, cache: Any):
        out = self.t5(
            encoder_outputs=(memory,),
            attention_mask=mask.long(),
            decoder_input_ids=inputs,
            use_cache=True,
            **{cache_arg(): cache},
        )
        return out.logits, getattr(out, cache_arg())


class IDGenRec(Persistent, nn.Module):
    """The two T5s; save/load write config.yaml and model.safetensors; `load` also reads the
    run folder's tokenizer.json into `tokenizer` (None when the folder has none)."""

    config_class = IDGenRecConfig
    variable_length_ids = True  # its run folder's codes differ in length (steerrec.run_folder)

    def __init__(self, config: IDGenRecConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = T5Seq2Seq(config.generator, config.vocab_size)
        self.recommender = T5Seq2Seq(config.recommender, config.vocab_size)
        self.tokenizer: Any = None

    @classmethod
    def load(cls, directory: Any) -> IDGenRec:
        from pathlib import Path

        from steerrec.models.idgenrec_text import load_tokenizer

        model = super().load(directory)
        path = Path(directory) / TOKENIZER_FILE
        model.tokenizer = load_tokenizer(str(path)) if path.is_file() else None
        return model

    def prompt_batch(self, histories: Any) -> dict[str, torch.Tensor]:
        """The recommender's input (input_ids, mask [B, S]) for histories of IDs (token lists,
        oldest first) in the first template, as validation and the evaluator read them."""
        from steerrec.models.idgenrec_text import encode_prompt

        if self.tokenizer is None:
            raise ValueError("IDGenRec.prompt_batch needs the run's tokenizer (load the run folder)")
        prompts = [encode_prompt(self.tokenizer, 0, h, self.config.max_prompt_tokens)[0] for h in histories]
        ids = torch.full((len(prompts), max(map(len, prompts), default=1)), PAD_ID, dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, : len(prompt)] = torch.as_tensor(prompt)
        ids = ids.to(self.recommender.embeddings().device)
        return {"input_ids": ids, "mask": ids != PAD_ID}

    def item_trie(self, codes: Any) -> Any:
        """The prefix trie over the items' IDs: `codes` [n_items, L] token ids, -1 after each
        ID's end (steerrec.run_folder pads variable-length IDs so); every ID gets </s>."""
        from steerrec.decoding import PrefixTrie

        ids = [[int(t) for t in row if t >= 0] for row in codes]
        return PrefixTrie.from_sequences(ids, self.config.vocab_size, EOS_ID, PAD_ID)

    def forward(self, batch: dict[str, Any], part: str) -> torch.Tensor:
        """The training loss of `part`: "generator" or "recommender" (token cross-entropy of
        batch["labels"]) or "soft" (`soft_loss`, which trains the generator through the
        recommender). The trainer calls the model, so that DDP sees every phase's forward."""
        if part == "soft":
            return self.soft_loss(batch)
        if part not in ("generator", "recommender"):
            raise ValueError(f"part must be 'generator', 'recommender' or 'soft', got {part!r}")
        return getattr(self, part)(batch)

    @torch.no_grad()
    def candidates(
        self, text: dict[str, torch.Tensor], n_groups: int, group_size: int, penalty: float, min_len: int, max_len: int
    ) -> list[list[tuple[int, ...]]]:
        """k = n_groups * group_size candidate IDs per item (`text`: input_ids, mask), group
        by group; IDs that found no end in the window are left out."""
        from steerrec.decoding import diverse_beam_search

        gen = self.generator
        state = gen.encode(text)
        tokens, scores, lengths = diverse_beam_search(
            gen.step_fn,
            state["memory"].shape[0],
            n_groups,
            group_size,
            penalty,
            min_len,
            max_len,
            EOS_ID,
            PAD_ID,
            banned_tokens=(UNK_ID,),
            start_tokens=gen.start_tokens,
            state=state,
            reorder=gen.reorder,
            device=state["memory"].device,
        )
        out = []
        for row, row_scores, row_lengths in zip(tokens.tolist(), scores.tolist(), lengths.tolist()):
            found = [tuple(t[:n]) for t, s, n in zip(row, row_scores, row_lengths) if s > float("-inf")]
            out.append(found)
        return out

    def soft_ids(self, text: dict[str, torch.Tensor], id_labels: torch.Tensor) -> torch.Tensor:
        """[U, T, d_rec]: softmax of the generator's teacher-forced logits over each item's
        current ID (`id_labels` [U, T], -100 padding) times the recommender's embeddings."""
        logits = self.generator.logits(self.generator.encode(text), id_labels)  # [U, T, V]
        return torch.softmax(logits.float(), dim=-1) @ self.recommender.embeddings().float()

    def soft_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """L_id (Sec. 2.5.2): the recommender's loss with the prompt's ID tokens replaced by soft IDs.

        `batch`: input_ids, mask, labels [B, T] as for the recommender; slot_item, slot_token
        [B, S] (which batch item's ID token sits at each prompt position, -1 for template
        text); item_text, item_mask [U, S_t] and item_labels [U, T_id] for those items.
        """
        soft = self.soft_ids({"input_ids": batch["item_text"], "mask": batch["item_mask"]}, batch["item_labels"])
        embeds = self.recommender.t5.get_input_embeddings()(batch["input_ids"])  # [B, S, d]
        at = batch["slot_item"] >= 0
        embeds = embeds.masked_scatter(
            at[..., None], soft[batch["slot_item"][at], batch["slot_token"][at]].to(embeds.dtype)
        )
        return self.recommender({"inputs_embeds": embeds, "mask": batch["mask"], "labels": batch["labels"]})

    @torch.no_grad()
    def recommend(self, batch: dict[str, Any], trie: Any, beam_size: int, top_k: int, item_bias: Any = None):
        """Item rows [B, top_k] and scores, best first, under the trie of the current IDs
        (`PrefixTrie.from_sequences(ids, vocab_size, EOS_ID, PAD_ID)`); -1 / -inf pad."""
        from steerrec.decoding import constrained_beam_search

        rec = self.recommender
        state = rec.encode(batch)
        return constrained_beam_search(
            rec.step_fn,
            state["memory"].shape[0],
            trie,
            beam_size,
            top_k,
            start_tokens=rec.start_tokens,
            state=state,
            reorder=rec.reorder,
            device=state["memory"].device,
            item_bias=item_bias,
            pad_token=PAD_ID,
        )
