#!/bin/bash
# usage: run.sh NAME [--set k=v ...]   (config base26.yaml unless CFG env set)
name=$1; shift
cd /work/calib
CFG=${CFG:-calib/base26.yaml}
mkdir -p /work/calib-runs/$name
echo "$CFG $*" > /work/calib-runs/$name.args
start=$(date +%s)
PYTHONPATH=/work/calib/src nohup /work/main/.venv/bin/python -m rewritelab train $CFG --out /work/calib-runs/$name "$@" > /work/calib-runs/$name.log 2>&1
echo "wall_s $(( $(date +%s) - start ))" >> /work/calib-runs/$name.args
