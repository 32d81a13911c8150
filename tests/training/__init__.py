"""Tests of ``discnet.training``."""
