"""Tests of ``discnet.analysis``."""
