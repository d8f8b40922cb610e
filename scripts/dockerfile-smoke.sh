#!/usr/bin/env bash
# Run the Dockerfile's steps in a plain shell (no Docker engine here) and smoke-test the result:
# the builder stage's RUN lines with their paths moved into a temp dir, a fresh venv with
# only the wheel installed, `paysieve db upgrade` on a temp SQLite, the image's CMD
# (gunicorn -c gunicorn.conf.py) on a loopback port, its HEALTHCHECK command, /readyz and a
# signed `paysieve simulate stripe charge.succeeded`. Everything it starts is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
PYTHON="${PYTHON:-python3}"

WORK="$(mktemp -d -t paysieve-docker-smoke-XXXXXX)"
GUNICORN_PID=""
cleanup() {
    if [[ -n "$GUNICORN_PID" ]] && kill -0 "$GUNICORN_PID" 2>/dev/null; then
        kill -TERM -- "-$GUNICORN_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$GUNICORN_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$GUNICORN_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Paths the image uses, relocated under $WORK.
SRC="$WORK/src" WHEELS="$WORK/wheels" VENV="$WORK/opt/paysieve" APP="$WORK/app"
mkdir -p "$SRC" "$APP" "$WORK/var"

echo "== dockerfile smoke: builder stage (COPY, then each RUN)"
# The COPY lines of the builder stage, relative to the build context.
"$PYTHON" - "$REPO/Dockerfile" "$REPO" "$SRC" <<'PY'
import shutil, sys
from pathlib import Path

dockerfile, context, dest = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
stage = 0
for line in dockerfile.read_text().splitlines():
    stage += line.startswith("FROM ")
    if stage != 1 or not line.startswith("COPY "):
        continue
    *sources, target = line.split()[1:]
    for source in map(context.joinpath, sources):
        # "dir/" (or ".", "./") means into that directory; anything else is the new name.
        into = dest / target / source.name if target.endswith("/") or target == "." else dest / target
        into.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            # symlinks=True: docker COPY keeps a link a link, so its target must be copied too.
            shutil.copytree(
                source, into, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(source, into)
PY
# The RUN lines of the builder stage, with the image's paths moved under $WORK.
mapfile -t RUNS < <(awk '/^FROM /{stage++} stage==1 && /^RUN /{sub(/^RUN /, ""); print}' Dockerfile)
for step in "${RUNS[@]}"; do
    step="${step//\/wheels/$WHEELS}"
    step="${step//\/opt\/paysieve/$VENV}"
    step="${step//python -m/$PYTHON -m}"
    echo "+ $step"
    (cd "$SRC" && bash -euo pipefail -c "$step" >"$WORK/run.log" 2>&1) || { cat "$WORK/run.log"; exit 1; }
done

echo "== dockerfile smoke: final stage (only the venv and gunicorn.conf.py, outside the source tree)"
cp gunicorn.conf.py "$APP/gunicorn.conf.py"
PORT="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
KEYS="$("$VENV/bin/python" -c 'from gateway.core.crypto import generate_key as g; print(g(), g())')"
read -r DATA_KEY INDEX_KEY <<<"$KEYS"
# Configuration only through the environment, as in the image; loopback instead of 0.0.0.0.
export PATH="$VENV/bin:$PATH" PORT GUNICORN_HOST=127.0.0.1 GUNICORN_WORKERS=2 \
    PAYSIEVE_CONFIG="$WORK/paysieve.toml" \
    PAYSIEVE_DATABASE_URL="sqlite:///$WORK/var/paysieve.db" \
    PAYSIEVE_STRIPE_WEBHOOK_SECRETS="whsec_smoke_$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')" \
    PAYSIEVE_DATA_KEYS="$DATA_KEY" PAYSIEVE_INDEX_KEY="$INDEX_KEY"
unset PROMETHEUS_MULTIPROC_DIR
echo "# mounted configuration file: everything comes from the environment here" >"$PAYSIEVE_CONFIG"
cd "$APP"

echo "+ paysieve db upgrade"
paysieve db upgrade

# The image's CMD, verbatim but for where gunicorn.conf.py sits.
mapfile -t CMD_ARGV < <("$PYTHON" -c 'import json, sys
line = [x for x in open(sys.argv[1]) if x.startswith("CMD ")][-1]
print("\n".join(json.loads(line[4:])))' "$REPO/Dockerfile")
CMD_ARGV=("${CMD_ARGV[@]/\/app\/gunicorn.conf.py/$APP/gunicorn.conf.py}")
echo "+ ${CMD_ARGV[*]}"
setsid "${CMD_ARGV[@]}" >"$WORK/gunicorn.log" 2>&1 &
GUNICORN_PID=$!

HEALTHCHECK="$(grep -A1 '^HEALTHCHECK' "$REPO/Dockerfile" | sed -n 's/^ *CMD //p')"
healthcheck() {
    "$PYTHON" -c 'import json,subprocess,sys; sys.exit(subprocess.call(json.loads(sys.argv[1]), stderr=subprocess.DEVNULL))' "$HEALTHCHECK"
}
for _ in $(seq 100); do healthcheck && break; sleep 0.2; done
healthcheck || { echo "HEALTHCHECK never passed"; cat "$WORK/gunicorn.log"; exit 1; }
echo "HEALTHCHECK ok"

fetch() { "$PYTHON" -c 'import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=5); print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())' "$1"; }
echo "GET /healthz -> $(fetch "http://127.0.0.1:$PORT/healthz")"
READY="$(fetch "http://127.0.0.1:$PORT/readyz")"
echo "GET /readyz -> $READY"
[[ "$READY" == 200* ]] || { cat "$WORK/gunicorn.log"; exit 1; }

echo "+ paysieve simulate stripe charge.succeeded"
OUT="$(paysieve simulate stripe charge.succeeded --url "http://127.0.0.1:$PORT")" || { echo "$OUT"; cat "$WORK/gunicorn.log"; exit 1; }
echo "$OUT"
grep -q '"status":"stored"' <<<"$OUT"
METRICS="$(fetch "http://127.0.0.1:$PORT/metrics")"
grep -q 'paysieve_deliveries_total{endpoint="default",outcome="stored",provider="stripe"} 1.0' <<<"$METRICS" \
    || { echo "/metrics does not count the delivery"; echo "$METRICS" | grep deliveries; exit 1; }
echo "GET /metrics -> counts the stored delivery"

# The audit scan reads the allowlist shipped inside the package (a link in the source tree).
echo "+ paysieve audit --format json"
paysieve audit --format json >"$WORK/audit.json" 2>"$WORK/audit.err" \
    || { cat "$WORK/audit.err" "$WORK/audit.json"; exit 1; }
echo "paysieve audit -> no finding"

kill -TERM "$GUNICORN_PID"
for _ in $(seq 100); do kill -0 "$GUNICORN_PID" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$GUNICORN_PID" 2>/dev/null; then echo "gunicorn did not stop on SIGTERM"; exit 1; fi
GUNICORN_PID=""
echo "== dockerfile smoke: passed"
