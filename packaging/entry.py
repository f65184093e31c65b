"""The frozen app's entry point (PyInstaller runs this file, not the `geogui` console script)."""

import multiprocessing

# First, before anything else runs: in a frozen app a spawned worker process re-runs this file, and
# freeze_support() turns it into that worker instead of a second copy of the app.
multiprocessing.freeze_support()

from geogui.app import main  # noqa: E402

raise SystemExit(main())
