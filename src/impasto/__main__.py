"""python -m impasto"""

import signal
import sys

# Until the command's own handlers are in place (impasto.cli.main, first thing): a stop while
# the command starts ends it quietly, with the status a stopped command has.
signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(130))
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))

from impasto.cli import main  # noqa: E402 - after the handlers

sys.exit(main())
