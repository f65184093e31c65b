"""The window's smaller pieces: toolbar, status bar, Runs panel, presets, dialogs and alerts."""
