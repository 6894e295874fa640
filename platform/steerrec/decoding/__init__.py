"""Decoding item IDs: a tensor prefix trie and beam search, constrained or filtered, and
diverse (grouped) beam search for generating textual IDs.

Imports torch; nothing here imports Ray.
"""

from steerrec.decoding.beam import constrained_beam_search, filter_invalid, unconstrained_beam_search
from steerrec.decoding.diverse import diverse_beam_search
from steerrec.decoding.trie import PrefixTrie, level_offsets

__all__ = [
    "PrefixTrie",
    "constrained_beam_search",
    "diverse_beam_search",
    "filter_invalid",
    "level_offsets",
    "unconstrained_beam_search",
]
