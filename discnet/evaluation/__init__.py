"""Evaluation: masks against truths (metrics, evaluate), readers against readers (agreement),
volumes, morphometry and volume agreement statistics."""
