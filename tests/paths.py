"""Where the tests find the repository and their fixture files, wherever a test module sits."""

from pathlib import Path

#: The repository root (the folder holding ``discnet/``, ``conf/`` and ``README.md``).
REPO = Path(__file__).resolve().parents[1]
#: ``tests/fixtures``: small files made once (the scripts that make them need TensorFlow).
FIXTURES = REPO / "tests" / "fixtures"
