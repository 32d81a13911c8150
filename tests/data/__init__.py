"""Tests of ``discnet.data``."""
