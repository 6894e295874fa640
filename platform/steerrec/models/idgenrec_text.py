"""IDGenRec's text side: the shared tokenizer, the prompt templates, prompts as token ids.

No pre-trained T5 or T5 tokenizer ships offline (MACHINE.md; on PyPI `flan-t5-hf` 0.7 is a
1.9 kB source archive without weights), so IDGenRec here builds its tokenizer: a
SentencePiece-style unigram model (the paper's tokenizer kind, Sec. 3.2) trained with the
`tokenizers` library on the item texts and the templates, lower-cased, with T5's special
ids: <pad> = 0 (also the decoder start), </s> = 1, <unk> = 2. The ID generator and the
recommender share it: the soft ID embeddings of alternate training multiply the
generator's distribution over this vocabulary by the recommender's embedding matrix.

Prompts (Sec. 2.1): ten templates in P5's style without the dataset name (Sec. 3.2) and
without the optional user ID; one is drawn per training example, the first is used to
evaluate. History IDs are spliced in as token ids, not re-tokenised, so the recommender
reads exactly the tokens the trie holds; `encode_prompt` also says where each ID token
sits, for the soft embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

PAD_ID, EOS_ID, UNK_ID = 0, 1, 2
SPECIALS = ("<pad>", "</s>", "<unk>")
TOKENIZER_FILE = "tokenizer.json"  # in an IDGenRec run folder and its phases folder
HISTORY = "{history}"
TEMPLATES = (
    "The user has purchased items {history}; predict the next possible item to be bought by the user.",
    "Given the following purchase history of a user: {history}. What is the next item to recommend?",
    "Here is the purchase history of a user: {history}. What to recommend next for the user?",
    "A user has bought {history} in this order. Which item will the user buy next?",
    "Purchase history: {history}. Predict the next item the user will buy.",
    "According to what the user bought before, {history}, can you recommend the next item?",
    "The user bought {history}. Generate the next item the user is likely to interact with.",
    "Based on the items {history} that the user has bought, recommend the next item.",
    "Items in the user's history, oldest first: {history}. Which item comes next?",
    "What item should be recommended to a user who purchased {history}?",
)


def build_tokenizer(texts: Sequence[str], vocab_size: int = 8000):
    """A unigram tokenizer (NFKC, lower case, metaspace + punctuation split) trained on
    `texts` and the templates, as a transformers PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size <= len(SPECIALS):
        raise ValueError(f"vocab_size must exceed the {len(SPECIALS)} special tokens, got {vocab_size}")
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()])
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIALS), unk_token=SPECIALS[2], show_progress=False
    )
    corpus = [t.replace(HISTORY, " ") for t in TEMPLATES] + [t for t in texts if t]
    tok.train_from_iterator(corpus, trainer)
    tok = _canonical(tok)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    if (fast.pad_token_id, fast.eos_token_id, fast.unk_token_id) != (PAD_ID, EOS_ID, UNK_ID):
        raise RuntimeError(f"tokenizer special ids {fast.pad_token_id, fast.eos_token_id, fast.unk_token_id}")
    return fast


def _canonical(tok: Any) -> Any:
    """The trained tokenizer with its vocabulary in one order: pieces by score, then text.

    The unigram trainer sums scores in a hash-map order that changes from process to process,
    so the same corpus gave the same pieces in a different order (other token ids, so other
    IDs and other weights for the same seed); scores rounded to 1e-9 make the ties equal."""
    import json

    from tokenizers import Tokenizer

    state = json.loads(tok.to_str())
    vocab = [[piece, round(score, 9)] for piece, score in state["model"]["vocab"]]
    n = len(SPECIALS)  # the special tokens keep ids 0..n-1
    state["model"]["vocab"] = vocab[:n] + sorted(vocab[n:], key=lambda v: (-v[1], v[0]))
    return Tokenizer.from_str(json.dumps(state))


def load_tokenizer(path: str):
    """The tokenizer saved as tokenizer.json (`tokenizer.backend_tokenizer.save(path)`)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_file=path, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def text_tokens(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    """Each text's tokens, cut to max_tokens - 1, then </s> (the generator's input)."""
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [ids[: max_tokens - 1] + [EOS_ID] for ids in encoded]


@cache
def _pieces(tokenizer: Any, template: int) -> tuple[list[int], list[int], list[int]]:
    before, after = TEMPLATES[template].split(HISTORY)
    sep = tokenizer.encode(",", add_special_tokens=False)
    encode = lambda s: tokenizer.encode(s, add_special_tokens=False) if s.strip() else []
    return encode(before), sep, encode(after)


def encode_prompt(
    tokenizer: Any, template: int, history: Sequence[Sequence[int]], max_tokens: int
) -> tuple[list[int], list[int], list[int]]:
    """Template `template` with the history's ID tokens, then </s>: (tokens, item slot, token slot).

    slot_item[p] = index into `history` of the ID at position p (-1 for template text),
    slot_token[p] = the token's place in that ID. The oldest IDs are dropped until the
    prompt fits `max_tokens`.
    """
    if not 0 <= template < len(TEMPLATES):
        raise ValueError(f"template must be in [0, {len(TEMPLATES)}), got {template}")
    before, sep, after = _pieces(tokenizer, template)
    kept = list(range(len(history)))
    while True:
        tokens, items, places = list(before), [-1] * len(before), [-1] * len(before)
        for n, h in enumerate(kept):
            if n:
                tokens += sep
                items += [-1] * len(sep)
                places += [-1] * len(sep)
            tokens += list(history[h])
            items += [h] * len(history[h])
            places += list(range(len(history[h])))
        tail = [*after, EOS_ID]
        if len(tokens) + len(tail) <= max_tokens or not kept:
            return tokens + tail, items + [-1] * len(tail), places + [-1] * len(tail)
        kept = kept[1:]
