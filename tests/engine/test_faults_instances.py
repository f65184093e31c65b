"""Fault suite: two app instances share one settings file and one runs folder. Writes are atomic, a
save over the other instance's says so, and a run directory has one writer (see also
test_faults_environment.test_one_writer_per_run_directory)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from geogui import paths

from geogui.settings import store as settings_store
from geogui.settings import Settings

WRITER = textwrap.dedent("""
    import sys
    from geogui.settings import store as settings_store
    from geogui.settings import Settings
    settings = Settings()
    settings.run.steps = int(sys.argv[1])
    for _ in range(300):
        settings_store.save_settings(settings)
""")


def test_two_instances_saving_at_once_never_leave_a_torn_or_mixed_file():
    path = paths.settings_file()
    settings_store.save_settings(Settings())
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(steps)]) for steps in (111, 222)]
    seen = set()
    while any(writer.poll() is None for writer in writers):
        raw = json.loads(path.read_text(encoding="utf-8"))  # always one whole file
        seen.add(Settings.model_validate(raw).run.steps)
    assert [writer.wait(60) for writer in writers] == [0, 0]
    assert seen <= {500, 111, 222} and len(seen) >= 2
    assert not list(path.parent.glob(".settings.json.*.tmp"))


def test_saving_over_another_instance_s_settings_says_so():
    settings_store.save_settings(Settings())
    mine = settings_store.load_settings().settings  # this instance starts
    other = Settings()
    other.run.steps = 42
    subprocess.run([sys.executable, "-c", WRITER.replace("range(300)", "range(1)"), "42"], check=True)
    saved = settings_store.save_settings(mine)  # this instance closes: last writer wins, and says so
    assert saved.notice == ("settings.json had been changed by another geogui window; "
                            "replaced with this window's settings")
    assert settings_store.load_settings().settings == mine
    assert settings_store.save_settings(mine).notice is None  # no one else wrote since
