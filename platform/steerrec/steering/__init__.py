"""Steering by plain-language preferences that reads polarity: "avoid X" leaves X out.

`Steerer` reads statements (avoid or like, and which items they name) and gives per-item
biases for the trie-constrained beam search; `polarity` is the classifier it reads them
with and `phrases` the labelled statements that classifier learns from.
"""

from steerrec.steering.polarity import PolarityModel, load_or_fit
from steerrec.steering.steer import AVOID, LIKE, Reading, Steerer, SteeringConfig, item_bias

__all__ = ["AVOID", "LIKE", "PolarityModel", "Reading", "Steerer", "SteeringConfig", "item_bias", "load_or_fit"]
