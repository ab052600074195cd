# Sourced by the scripts: make or reuse the virtual environment and install the package into it.
# Needs only Python 3.11+ on PATH (as python3, or $PYTHON).
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# Reinstall only when the dependency list changed.
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$wanted" ]; then
  echo "==> installing signalr-asgi-auth[test] into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]"
  echo "$wanted" > "$VENV/.installed"
fi
