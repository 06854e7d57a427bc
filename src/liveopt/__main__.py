import sys

from liveopt.cli import main

sys.exit(main())
