"""steerrec: recommendation that people steer in plain language, on Ray.

Importing the package imports nothing heavy (no torch, ray or vllm); the modules that
need them import them inside the functions that use them.
"""

__version__ = "0.1.0"
