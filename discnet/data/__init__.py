"""Data: synthetic phantoms, preprocessing, slice datasets and the Lightning data module."""
