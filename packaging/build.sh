#!/usr/bin/env bash
# Build geogui for this platform with PyInstaller: dist/geogui.app on macOS, the one-folder build
# dist/geogui/ elsewhere. Then check the build (its --version, and a 3-step run that saves a
# screenshot, in throwaway settings and runs folders) and print the artefact's path, size and build
# time. `make app` sets up the environment and runs this.
#
# Environment (all optional):
#   PYTHON                    the Python whose environment has geogui, its dependencies and PyInstaller
#                             (pip install -e ".[app]"); default: .venv/bin/python if there, else python3
#   GEOGUI_CODESIGN_IDENTITY  macOS: the identity to sign with, e.g. "Developer ID Application: Name (TEAMID)".
#                             Signed with the hardened runtime and packaging/entitlements.plist.
#                             Unset: PyInstaller signs ad hoc, and Gatekeeper blocks the downloaded app.
#   GEOGUI_NOTARY_PROFILE     macOS, with an identity: a `xcrun notarytool store-credentials` profile;
#                             the zipped app is then notarized and the ticket stapled to the app.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c "import PyInstaller, geogui" 2>/dev/null; then
    echo "build.sh: $PYTHON cannot import PyInstaller and geogui; install them with" >&2
    echo "    $PYTHON -m pip install -e \".[app]\"    (or run: make app)" >&2
    exit 2
fi

dist="$root/dist"
work="$root/build/pyinstaller"
started=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$dist" --workpath "$work" packaging/geogui.spec
seconds=$(( $(date +%s) - started ))

if [[ "$(uname -s)" == "Darwin" ]]; then
    artefact="$dist/geogui.app"
    executable="$artefact/Contents/MacOS/geogui"
else
    artefact="$dist/geogui"
    executable="$artefact/geogui"
fi

# The smallest proof that the frozen interpreter starts and finds the package's metadata.
version_line="$("$executable" --version)"
expected="geogui $("$PYTHON" -c 'from importlib.metadata import version; print(version("geogui"))')"
if [[ "$version_line" != "$expected" ]]; then
    echo "build.sh: the built app says '$version_line', expected '$expected'" >&2
    exit 1
fi

# A real run from the build: torch imports, trains 3 steps on the default corpus, the window draws.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
if [[ "$(uname -s)" != "Darwin" ]]; then export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"; fi
GEOGUI_CONFIG_DIR="$scratch/config" GEOGUI_DATA_DIR="$scratch/data" \
    "$executable" --run-steps 3 --screenshot "$scratch/screenshot.png" >/dev/null
if [[ ! -s "$scratch/screenshot.png" ]]; then
    echo "build.sh: the built app did not save its screenshot" >&2
    exit 1
fi

if [[ "$(uname -s)" == "Darwin" ]]; then
    codesign --verify --deep --strict "$artefact"
    # ditto keeps the bundle's symlinks (and so its signature) intact; zip -r would not.
    archive="$dist/geogui-${expected#geogui }-macos-arm64.zip"
    rm -f "$archive"
    ditto -c -k --keepParent "$artefact" "$archive"
    if [[ -n "${GEOGUI_CODESIGN_IDENTITY:-}" && -n "${GEOGUI_NOTARY_PROFILE:-}" ]]; then
        xcrun notarytool submit "$archive" --keychain-profile "$GEOGUI_NOTARY_PROFILE" --wait
        xcrun stapler staple "$artefact"
        rm -f "$archive"
        ditto -c -k --keepParent "$artefact" "$archive"
    fi
    echo "archive: $archive ($(du -sh "$archive" | cut -f1))"
fi

echo "built: $artefact"
echo "size: $(du -sh "$artefact" | cut -f1)"
echo "version: $version_line"
echo "checked: --version, and --run-steps 3 --screenshot"
echo "build time: ${seconds} s"
