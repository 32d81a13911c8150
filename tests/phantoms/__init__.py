"""Tests of ``discnet.phantoms``."""
