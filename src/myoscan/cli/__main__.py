import sys

from myoscan.cli import main

sys.exit(main())
