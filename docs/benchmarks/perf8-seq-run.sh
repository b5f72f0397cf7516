#!/bin/bash
# usage: PYTHON=/path/to/.venv/bin/python [BURN=n] [OUT=dir] perf8-seq-run.sh NAME CODE_DIR [bench args...]
# 2 nodes x 2 workers, PostgreSQL (a fresh database), 2 Redis shards (6379 and 6390), BURN CPU burners
# (busy loops, to load the box as in perf7-loss.md) while the bench runs.
set -u; : "${PYTHON:?set PYTHON to the venv python}"
name=$1; code=$2; shift 2
out=${OUT:-/tmp/seqrun}/$name; rm -rf $out; mkdir -p $out
cd $code
db=imhub_seq_$(date +%s%N | cut -c1-13)
psql -h 127.0.0.1 -U postgres -qc "create database $db" >/dev/null
export out db code PYTHON
flock /work/bench.lock bash -c '
  pids=""; for i in $(seq ${BURN:-0}); do timeout 300 python3 -c "while True: pass" & pids="$pids $!"; done
  sleep 2; uptime > $out/load-start
  PYTHONPATH=$code timeout 280 $PYTHON -m imhub bench mixed --spawn --quiet --server-nodes 2 --server-workers 2 \
    --server-env IMHUB_BUS=redis --server-env IMHUB_REDIS_URL=redis://127.0.0.1:6379/0,redis://127.0.0.1:6390/0 \
    --server-env IMHUB_REDIS_PREFIX=seq$RANDOM \
    --server-env IMHUB_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/$db \
    --group-senders 2 --hold 5 --warmup 2 "$@" --data-dir $out/data --json $out/result.json > $out/bench.out 2>&1
  echo rc=$? >> $out/bench.out
  uptime > $out/load-end
  for p in $pids; do kill $p 2>/dev/null; done; wait
' _ "$@"
psql -h 127.0.0.1 -U postgres -qc "drop database $db with (force)" >/dev/null
echo "done $name $(cat $out/load-start | sed 's/.*average//') -> $(cat $out/load-end | sed 's/.*average//')"; tail -3 $out/bench.out
