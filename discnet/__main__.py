import sys

from discnet.cli import main

sys.exit(main())
