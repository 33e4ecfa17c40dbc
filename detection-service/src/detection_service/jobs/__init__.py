"""Batch jobs: stored uploads, a Redis Stream of job ids, and workers that finish each once."""
