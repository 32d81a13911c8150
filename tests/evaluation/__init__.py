"""Tests of ``discnet.evaluation``."""
