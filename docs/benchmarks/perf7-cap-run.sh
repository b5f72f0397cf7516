#!/bin/bash
# usage: [SPY=1 SPYDELAY= SPYDUR=] run.sh NAME CODE_DIR [bench args...]
set -u
name=$1; code=$2; shift 2
out=/tmp/cap/$name; rm -rf $out; mkdir -p $out
cd $code
db=imhub_cap_$(date +%s%N | cut -c1-13)
psql -h 127.0.0.1 -U postgres -qc "create database $db" >/dev/null
export out db code
flock /work/bench.lock bash -c '
  uptime > $out/load-start
  for port in 6379 6390; do redis-cli -p $port info stats > $out/r$port-start 2>/dev/null; redis-cli -p $port info commandstats > $out/rc$port-start 2>/dev/null; done
  python3 /tmp/cap/sampler.py $out $out/data ${SPY:-0} ${SPYDELAY:-15} ${SPYDUR:-10} /work/wt-cap/.venv/bin/py-spy & sp=$!
  PYTHONPATH=$code timeout 240 /work/wt-cap/.venv/bin/python -m imhub bench "$@" --data-dir $out/data --server-env IMHUB_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/$db --json $out/result.json > $out/bench.out 2>&1
  echo rc=$? >> $out/bench.out
  kill $sp; wait $sp
  for port in 6379 6390; do redis-cli -p $port info stats > $out/r$port-end 2>/dev/null; redis-cli -p $port info commandstats > $out/rc$port-end 2>/dev/null; done
  uptime > $out/load-end
' _ "$@"
psql -h 127.0.0.1 -U postgres -qc "drop database $db with (force)" >/dev/null
echo done $name
