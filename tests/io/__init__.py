"""Tests of ``discnet.io``."""
