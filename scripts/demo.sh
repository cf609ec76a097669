#!/usr/bin/env bash
# Set up .venv and run rewardsmith's main job on its embedded default (no GPU, no API key).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/rewardsmith demo "$@"
