"""A deterministic stand-in processor for pipeline tests: it answers from the prompt.

The engines themselves are tested in test_local_engine.py; these tests check what the
pipeline does with replies (parse, retry, write, resume), so they need replies whose
validity the test controls: a reply is broken when its seed is divisible by 3, and the
key of user "u_bad" never gets a valid one.
"""

from __future__ import annotations

import json
import time


def answer(batch, delay: float = 0.0):
    texts, tin, tout = [], [], []
    for messages, params, user in zip(batch["messages"], batch["sampling_params"], batch["user_id"]):
        items = json.loads(messages[-1]["content"])
        if user == "u_bad" or params["seed"] % 3 == 0:
            text = "Sure! Here are the preferences: ..."
        else:
            text = json.dumps({"preferences": [f"Look for {e['item'].split()[1].lower()} items" for e in items][:5]})
        time.sleep(delay)
        texts.append(text)
        tin.append(len(messages[-1]["content"].split()))
        tout.append(len(text.split()))
    return {**batch, "generated_text": texts, "num_input_tokens": tin, "num_generated_tokens": tout}


def processor(delay: float = 0.0):
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    return lambda ds: ds.map_batches(answer, fn_kwargs={"delay": delay}, batch_size=2, batch_format="numpy")
