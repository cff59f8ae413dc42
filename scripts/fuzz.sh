#!/usr/bin/env bash
# Builds the libFuzzer target for the protocol parser with clang and runs it
# for FUZZ_SECONDS (default 60). Needs clang and libclang-rt-14-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-60}"
mkdir -p build/fuzz tests/fuzz/corpus
clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Isrc/util -Isrc/pgwire \
  tests/fuzz/fuzz_pgwire.c src/pgwire/codec.c src/util/buf.c src/util/alloc.c -o build/fuzz/fuzz_pgwire
echo "fuzz: running for ${secs}s"
build/fuzz/fuzz_pgwire -max_total_time="$secs" -max_len=4096 tests/fuzz/corpus
