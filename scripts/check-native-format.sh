#!/usr/bin/env bash
# Fails when a native/ source file is not clang-formatted (.clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "check-native-format: clang-format is not installed (apt-get install clang-format)" >&2
  exit 1
fi
clang-format --dry-run --Werror native/src/*.cc native/src/*.h
