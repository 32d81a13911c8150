"""Tests of ``discnet.models``."""
