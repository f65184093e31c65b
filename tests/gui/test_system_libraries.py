"""The first launch on Linux: the X11 libraries Qt needs are checked, and the one install line printed."""

from __future__ import annotations

from geogui import app
from geogui.gui import system_libraries


def test_missing_libraries_are_named_by_their_package():
    found = {"xcb-icccm": "libxcb-icccm.so.4"}
    missing = system_libraries.missing_packages(find=found.get)
    assert missing == ["libxcb-cursor0", "libxcb-keysyms1"]
    hint = system_libraries.install_hint(missing)
    assert hint.splitlines()[-1].strip() == "sudo apt-get install -y libxcb-cursor0 libxcb-keysyms1"
    assert system_libraries.missing_packages(find=lambda name: f"lib{name}.so") == []


def test_only_an_x11_launch_on_linux_needs_them():
    assert system_libraries.needs_xcb("linux", {"DISPLAY": ":0"})
    assert system_libraries.needs_xcb("linux", {"QT_QPA_PLATFORM": "xcb"})
    assert not system_libraries.needs_xcb("linux", {"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"})
    assert not system_libraries.needs_xcb("linux", {"WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "wayland"})
    assert not system_libraries.needs_xcb("darwin", {"DISPLAY": ":0"})


def test_the_app_says_what_to_install_instead_of_aborting(monkeypatch, capsys):
    monkeypatch.setattr(system_libraries, "check", lambda: system_libraries.install_hint(["libxcb-cursor0"]))
    assert app.main([]) == 3
    err = capsys.readouterr().err
    assert "libxcb-cursor0" in err and "sudo apt-get install -y libxcb-cursor0" in err


def test_the_check_command_exits_nonzero_with_the_hint(monkeypatch, capsys):
    monkeypatch.setattr(system_libraries, "check", lambda: system_libraries.install_hint(["libxcb-keysyms1"]))
    assert system_libraries.main() == 1
    assert "apt-get install -y libxcb-keysyms1" in capsys.readouterr().err
    monkeypatch.setattr(system_libraries, "check", lambda: None)
    assert system_libraries.main() == 0
