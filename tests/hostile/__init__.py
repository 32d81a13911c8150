"""The hostile-input corpus (its files and cases); the test is tests/test_hostile_input.py."""
