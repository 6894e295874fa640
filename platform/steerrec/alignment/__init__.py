"""Preference alignment; `losses` holds the loss functions (pure, torch only, no Ray).

Kept free of imports so that importing a submodule pulls in only what it needs.
"""
