"""Item identifiers for generative retrieval: RQ-VAE semantic IDs (`rqvae`, `kmeans`,
`semantic_ids`). Importing this package imports nothing; the modules import torch."""
