"""Synthetic lumbar phantoms with known disc masks (anatomy, tissues, rendering, writing)."""
