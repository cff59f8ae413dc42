#!/usr/bin/env bash
# Runs C unit test programs; with --valgrind under valgrind's memcheck
# (leaks are errors). Prints one cmocka summary per program and a final
# "N passed, N failed" line.
set -u
vg=()
if [ "${1:-}" = "--valgrind" ]; then
  shift
  vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect)
fi
pass=0; fail=0
for t in "$@"; do
  echo "== ${vg:+valgrind }$t"
  if "${vg[@]}" "$t"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAILED: $t"; fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
