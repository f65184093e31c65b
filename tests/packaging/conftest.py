from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"

# packaging/ is a folder of build scripts, not a package: its helpers are imported from their folder.
if str(PACKAGING) not in sys.path:
    sys.path.insert(0, str(PACKAGING))
