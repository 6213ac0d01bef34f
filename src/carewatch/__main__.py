import sys

from carewatch.cli import main

sys.exit(main())
