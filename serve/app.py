"""Ray Serve's entry point for the steerable recommender (serve/config.yaml's import_path).

    serve run serve/config.yaml                                  # from the repository root
    serve run serve.app:build_app run_dir=/abs/path/to/run      # same, without the config file

The deployment, its routes and the web page live in the installed package
(steerrec.serving.app); this file only names them for `serve run` / `serve deploy`.
"""

from steerrec.serving.app import API_KEY_ENV, AppArgs, SteerrecApp, build_app

__all__ = ["API_KEY_ENV", "AppArgs", "SteerrecApp", "build_app"]
