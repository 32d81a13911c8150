"""Inference: a network's disc probability per slice, prediction of scans into masks and volumes,
backends, ensemble uncertainty and QC pictures."""
