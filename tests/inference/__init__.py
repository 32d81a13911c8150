"""Tests of ``discnet.inference``."""
