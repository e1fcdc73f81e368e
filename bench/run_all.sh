#!/usr/bin/env bash
# Every target of docs/performance.md at full speed and again on one core (taskset -c 0, the
# stand-in for a Raspberry Pi), one after another so they do not load each other. Output goes
# to stdout; the leak run (1,000 sessions) is last and the longest.
#   bash bench/run_all.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")"
PY=${PY:-../.venv/bin/python}
export PYTHONPATH=${PYTHONPATH:-$(cd .. && pwd)}
quick=${1:-}
rep() { if [ "$quick" = --quick ]; then echo "$1"; else echo "$2"; fi; }
for core in "" "--one-core"; do
  pin=()
  [ -n "$core" ] && pin=(taskset -c 0)
  echo "=== ${core:-full speed} ==="
  "${pin[@]}" "$PY" bench_startup.py --repeat "$(rep 1 3)"
  "${pin[@]}" "$PY" bench_card_to_greeting.py --repeat "$(rep 3 7)"
  "${pin[@]}" "$PY" bench_tag_to_screen.py --items "$(rep 3 10)"
  "${pin[@]}" "$PY" bench_tag_to_screen.py --items "$(rep 3 10)" --size 800x480
  "${pin[@]}" "$PY" bench_stack_of_ten.py --repeat "$(rep 1 5)"
  "${pin[@]}" "$PY" bench_codec_process.py --repeat "$(rep 1 3)" --lines "$(rep 20000 100000)"
  "${pin[@]}" "$PY" bench_forwarding.py --count "$(rep 200 2000)"
done
echo "=== leak ==="
"$PY" bench_leak.py --sessions "$(rep 50 1000)" --every "$(rep 10 100)"
