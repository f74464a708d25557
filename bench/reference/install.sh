#!/bin/sh
# Install the FastAPI reference app's packages into a pip --target directory (default var/reference, git-ignored).
# Usage: bench/reference/install.sh [TARGET_DIR]   (PYTHON selects the interpreter; default: python)
set -eu
cd "$(dirname "$0")/../.."
"${PYTHON:-python}" -m pip install --target "${1:-var/reference}" -r bench/reference/requirements.txt
