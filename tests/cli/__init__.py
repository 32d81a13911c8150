"""Tests of ``discnet.cli``."""
