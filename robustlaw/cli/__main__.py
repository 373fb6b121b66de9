import sys

from robustlaw.cli import main

sys.exit(main())
