"""Training jobs on Ray Train: the shared epoch loop (`loop`), model batches (`batches`),
ranking and scoring for validation and evaluation (`ranking`),
recommenders (`recommender`), RQ-VAE semantic IDs (`semantic_ids`) and run folders
(`run_folder`). Importing this package imports nothing heavy."""
