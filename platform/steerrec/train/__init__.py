"""Training jobs on Ray Train: the shared epoch loop (`loop`), model batches (`batches`),
recommenders (`recommender`, which writes the run folder steerrec.run_folder documents)
and RQ-VAE semantic IDs (`semantic_ids`). Importing this package imports nothing heavy."""
