"""Tests of ``discnet.convert``."""
