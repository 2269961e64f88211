# Sourced by the other scripts: create .venv with Python 3.11 (or python3) and install the project
# into it with its dev and examples extras. Re-installs only when pyproject.toml changed.
set -euo pipefail
python_bin=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv with $python_bin"
    "$python_bin" -m venv .venv
fi
stamp=.venv/.mlprod-installed
wanted=$(cat pyproject.toml | "$python_bin" -c "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())")
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
    echo "Installing airflow-provider-mlprod and its dependencies into .venv (about a minute)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,examples]"
    echo "$wanted" > "$stamp"
fi
