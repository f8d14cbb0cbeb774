# Sourced by ./serve and ./test: make .venv (Python 3.11+) and install pushcamp into it,
# again only when pyproject.toml changed. Needs nothing but python3 and the package index.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
extras="${PUSHCAMP_EXTRAS:-}"
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "pushcamp needs Python 3.11 or newer (found: $("$python" --version 2>&1))" >&2
  exit 1
fi
stamp="$venv/.pushcamp-installed"
want="$(cat "$root/pyproject.toml" | "$python" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')$extras"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setting up $venv (first run or dependencies changed)..." >&2
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -e "$root${extras:+[$extras]}" >&2
  echo "$want" > "$stamp"
fi
