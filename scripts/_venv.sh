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
# The package with its extras, and the development tools from pyproject.toml's dependency groups
# (PEP 735; pip reads them from 25.1 on, so an older pip in the venv is upgraded first).
EXTRAS=${EXTRAS:-fastapi,emulator,otel}
DEP_GROUPS=${DEP_GROUPS:-dev}
if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$wanted $EXTRAS $DEP_GROUPS" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade 'pip>=25.1'
  groups=()
  for group in ${DEP_GROUPS//,/ }; do groups+=(--group "$group"); done
  echo "==> installing signalr-asgi-auth[$EXTRAS] and the groups ${DEP_GROUPS} into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]" "${groups[@]}"
  echo "$wanted $EXTRAS $DEP_GROUPS" > "$VENV/.installed"
fi
# The real SignalR JavaScript client (examples' page, end-to-end tests): `npm ci` when the lockfile
# changed since the last install. Without npm the examples' page and the Node and browser tests
# cannot run (those tests skip and say so; with CI=true they fail instead).
if [ -f package-lock.json ]; then
  if command -v npm >/dev/null 2>&1; then
    wanted=$(sha256sum package-lock.json | cut -d' ' -f1)
    if [ "$(cat node_modules/.installed 2>/dev/null)" != "$wanted" ]; then
      echo "==> npm ci (@microsoft/signalr)"
      npm ci --no-audit --no-fund --loglevel=error
      echo "$wanted" > node_modules/.installed
    fi
  elif [[ "${CI:-}" =~ ^([Tt][Rr][Uu][Ee]|1|[Yy][Ee][Ss])$ ]]; then
    echo "error: npm not found; CI=true: the Node and browser tests must run, so Node.js and npm are needed." >&2
    exit 1
  else
    echo "warning: npm not found; the examples' page and the Node and browser tests need Node.js and npm (they skip)." >&2
  fi
fi
