# Sourced by scripts/demo and scripts/test: make (or reuse) the project venv .venv with a
# Python >= 3.11 and install the project into it, so nothing has to be run before them.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

find_python() {
    for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11 python; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    echo "need Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

bootstrap() {  # $1: extras spec, e.g. "" or "[dev]"
    local py
    if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        py=$(find_python)
        rm -rf .venv
        "$py" -m venv .venv
    fi
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".$1"
}
