# Two commands, each doing all of its own set-up on a fresh machine:
#   make run    set up and launch the app on the embedded default corpus
#   make test   set up and run the whole test suite (offscreen, then the X server tests under Xvfb)
# and, separately (slow, not part of make test):
#   make app    build geogui.app on macOS, a one-folder build in dist/geogui/ elsewhere
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Extra pip arguments for torch alone, e.g. a CPU-only wheel index on a Linux machine without a GPU.
TORCH_PIP_ARGS ?=

.PHONY: run test bench app

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: the project's range is then satisfied without pulling a multi-GB build.
	$(PY) -m pip install --quiet $(TORCH_PIP_ARGS) torch==2.13.0
	# the tensorboard extra too, so that the TensorBoard round-trip test runs rather than skips
	$(PY) -m pip install --quiet -e ".[test,tensorboard]"
	touch $@

run: $(VENV)/.installed
	# On Linux: the X11 libraries Qt needs and pip cannot install; prints the apt-get line if any is missing.
	$(PY) -m geogui.gui.system_libraries
	$(VENV)/bin/geogui

test: $(VENV)/.installed
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -p no:xvfb --ignore=tests/x11
	# Focus, shortcuts while a field has focus, dialogs: on Qt's xcb platform in a virtual X server
	# that pytest-xvfb starts. Without Linux, Xvfb or the X11 libraries they are skipped, saying why.
	QT_QPA_PLATFORM=xcb $(PY) -m pytest tests/x11

bench: $(VENV)/.installed
	$(PY) benchmarks/modes.py

app: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[app]"
	PYTHON=$(PY) packaging/build.sh
