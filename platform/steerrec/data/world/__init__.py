"""The built-in world: a seeded, realistic small store with known user preferences.

    world = generate(WorldConfig(seed=0))   # items, interactions, truth (schema.*)
    summary(world)                          # counts a demo can print

Five categories (skincare, headphones, board games, coffee, running shoes) with
attribute vocabularies (vocab); listings rendered from attributes (catalog); users with
drifting likes and dislikes who mostly buy what they like, rate and review it (users,
reviews); and the truth: the preference statements the most recent five reviews reveal
at every (user, t) (truth). `WorldReader` hands the world to the shared ingest.
"""

from steerrec.data.world.generator import (
    MENTIONS,
    World,
    WorldConfig,
    generate,
    summary,
)
from steerrec.data.world.reader import WorldReader

__all__ = ["MENTIONS", "World", "WorldConfig", "WorldReader", "generate", "summary"]
