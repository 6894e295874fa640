"""The GPU check (`python -m benchmarks.gpu.check`): one part per path, a plan, and a CPU dry run."""
