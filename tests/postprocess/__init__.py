"""Tests of ``discnet.postprocess``."""
