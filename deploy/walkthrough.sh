#!/usr/bin/env bash
# Walks through docs/operations.md with a built careid, unprivileged, in a temporary directory:
# install (deploy/install.sh into a temporary prefix), configure by CAREID_* environment, migrate,
# start, health, back up, rotate the signing keys, verify and export the audit trail, reload on
# SIGHUP, drain on SIGTERM, restore the backup, re-key the key-encryption key, emergency rotation.
# CI runs it after the tests:
#
#   CAREID_BIN=target/debug/careid bash deploy/walkthrough.sh
#
# Needs bash, curl and openssl. Stops at the first step that fails, with a non-zero status and the
# end of the server's log; on exit it stops the server it started and removes its directory
# (CAREID_WALKTHROUGH_KEEP=1 keeps the directory, for a look at the logs).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${CAREID_BIN:-target/debug/careid}
case $bin in
    /*) ;;
    *) bin=$repo/$bin ;;
esac
keep=${CAREID_WALKTHROUGH_KEEP:-0}
# careid reads every CAREID_* variable as configuration and refuses unknown ones (CI sets
# a stray one in a shell, for instance): start from none.
while IFS= read -r name; do
    unset "$name"
done < <(compgen -e | grep '^CAREID_' || true)

current_step=start
step() {
    current_step=$*
    printf '\n== %s\n' "$*"
}
fail() {
    echo "walkthrough: FAILED: $*" >&2
    exit 1
}
[ -x "$bin" ] || fail "no careid binary at $bin (set CAREID_BIN)"
for tool in curl openssl; do
    command -v "$tool" >/dev/null || fail "$tool is needed"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/careid-walkthrough.XXXXXX")
pid=
log=/dev/null
cleanup() {
    local status=$?
    trap - EXIT
    if [ -n "$pid" ] && [ -e "/proc/$pid" ]; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if [ "$status" != 0 ]; then
        echo "walkthrough: FAILED (status $status) in step: $current_step" >&2
        if [ -f "$log" ]; then
            echo "--- last lines of $log:" >&2
            tail -n 30 "$log" >&2 || true
        fi
    fi
    if [ "$keep" = 1 ]; then
        echo "walkthrough: kept $work"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Is the server process still running? (An exited child stays a zombie until waited for, and
# kill -0 still reaches a zombie, so read its state.)
running() {
    local stat
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

readyz() { curl -sS --max-time 2 --cacert "$pki/server.pem" "https://localhost:$main_port/readyz" 2>/dev/null || true; }

# careid serve in the background, then wait until /readyz says ready.
start_server() {
    log=$work/serve-$1.log
    "$bin" serve >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 120); do
        running || fail "careid serve ($1) exited during start"
        if [ "$(readyz)" = ready ]; then
            echo "careid serve ($1) is ready: pid $pid, log $log"
            return 0
        fi
        sleep 0.5
    done
    fail "/readyz did not answer ready within 60 s ($1)"
}

# SIGTERM, then the exit status must be 0 within 30 s.
stop_server() {
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
        running || break
        sleep 0.5
    done
    running && fail "careid was still running 30 s after SIGTERM"
    local status=0
    wait "$pid" || status=$?
    pid=
    [ "$status" = 0 ] || fail "careid exited with status $status after SIGTERM (expected 0)"
    grep -q 'drained; stopped' "$log" || fail "no 'drained; stopped' in $log"
    echo "careid drained and exited with status 0"
}

jwks_kids() {
    curl -sS --fail --cacert "$pki/server.pem" "https://localhost:$main_port/jwks" \
        | grep -o '"kid":"[^"]*"' | sort
}

metrics() { curl -sS --fail "http://127.0.0.1:$metrics_port/metrics"; }

# ---------------------------------------------------------------------------------------------
step "Install: deploy/install.sh into a temporary prefix (no user, no ownership)"
root=$work/root
sh "$repo/deploy/install.sh" --destdir "$root" --systemd --no-user "$bin"
for f in usr/local/bin/careid usr/local/bin/careid-healthcheck etc/careid/careid.toml \
    etc/systemd/system/careid.service etc/systemd/system/careid-migrate.service; do
    [ -f "$root/$f" ] || fail "install.sh did not install $f"
done
[ -d "$root/var/lib/careid" ] || fail "install.sh did not create var/lib/careid"
careid=$root/usr/local/bin/careid
"$careid" version

step "TLS: a self-signed server certificate; a smartcard CA with a CRL"
pki=$work/pki
mkdir -p "$pki/ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$pki/server.key" -out "$pki/server.pem" -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -keyout "$pki/card-ca.key" -out "$pki/card-ca.pem" \
    -subj "/O=careid walkthrough/CN=Walkthrough Card Root CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
touch "$pki/ca/index.txt"
echo 01 >"$pki/ca/crlnumber"
cat >"$pki/ca/ca.cnf" <<EOF
[ca]
default_ca = card
[card]
database = $pki/ca/index.txt
crlnumber = $pki/ca/crlnumber
default_md = sha256
default_crl_days = 7
EOF
openssl ca -batch -config "$pki/ca/ca.cnf" -gencrl -keyfile "$pki/card-ca.key" \
    -cert "$pki/card-ca.pem" -out "$pki/card-ca.crl" 2>/dev/null
chmod 0600 "$pki"/*.key

step "Configure: the installed file, then CAREID_* for this directory and free ports"
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=()
while [ "${#ports[@]}" -lt 3 ]; do
    p=$((20000 + RANDOM % 40000))
    if port_free "$p" && [[ " ${ports[*]:-} " != *" $p "* ]]; then
        ports+=("$p")
    fi
done
main_port=${ports[0]}
card_port=${ports[1]}
metrics_port=${ports[2]}
export CAREID_CONFIG=$root/etc/careid/careid.toml
export CAREID_ISSUER=https://localhost:$main_port
export CAREID_LISTEN=127.0.0.1:$main_port
export CAREID_DATABASE__URL=sqlite://$work/data/careid.db
export CAREID_TLS__CERT_FILE=$pki/server.pem
export CAREID_TLS__KEY_FILE=$pki/server.key
export CAREID_SMARTCARD__LISTEN=127.0.0.1:$card_port
export CAREID_SMARTCARD__BASE_URL=https://localhost:$card_port
export CAREID_SMARTCARD__CA_FILES="[\"$pki/card-ca.pem\"]"
export CAREID_SMARTCARD__CRL_FILES="[\"$pki/card-ca.crl\"]"
export CAREID_METRICS__LISTEN=127.0.0.1:$metrics_port
# Long enough to see /readyz answer 503 while careid drains.
export CAREID_SERVER__SHUTDOWN_DELAY_SECS=2
CAREID_KEYS__ENCRYPTION_KEY=$(openssl rand -base64 32)
export CAREID_KEYS__ENCRYPTION_KEY
env | grep '^CAREID_' | grep -v ENCRYPTION_KEY | sort

step "Migrate: careid migrate (what a multi-node upgrade runs as its own step)"
"$careid" migrate

step "Start: careid serve; /healthz, /readyz, careid-healthcheck, /metrics"
start_server first
[ "$(curl -sS --fail --cacert "$pki/server.pem" "https://localhost:$main_port/healthz")" = ok ] \
    || fail "/healthz did not answer ok"
"$root/usr/local/bin/careid-healthcheck" "127.0.0.1:$metrics_port" || fail "careid-healthcheck failed"
echo "careid-healthcheck: ready"
metrics >"$work/metrics-1.txt"
for m in careid_smartcard_crl_checking careid_smartcard_crl_next_update_timestamp_seconds; do
    grep -q "^$m " "$work/metrics-1.txt" || fail "/metrics has no $m"
done
grep -q '^careid_smartcard_crl_checking 1' "$work/metrics-1.txt" || fail "CRL checking is not on"
kids_before=$(jwks_kids)
[ "$(printf '%s\n' "$kids_before" | grep -c kid)" = 3 ] || fail "expected 3 signing keys in the JWKS, got: $kids_before"
echo "JWKS: 3 keys"

step "Back up: careid backup --to FILE (online, while careid serves)"
mkdir -p "$work/backup"
"$careid" backup --to "$work/backup/careid.db"
[ "$(head -c 15 "$work/backup/careid.db")" = "SQLite format 3" ] || fail "the backup is not an SQLite database"
ls -l "$work/backup/careid.db"

step "Rotate the signing keys: careid keys rotate"
"$careid" keys rotate | tee "$work/rotate.txt"
[ "$(grep -c 'published now, signs from' "$work/rotate.txt")" = 3 ] || fail "keys rotate did not add 3 keys"

step "Audit: careid audit verify; careid audit export --since 0"
"$careid" audit verify | tee "$work/verify.txt"
grep -q '^audit chain intact: ' "$work/verify.txt" || fail "audit verify did not say intact"
"$careid" audit export --since 0 >"$work/export.jsonl" 2>"$work/export.err"
cat "$work/export.err"
[ -s "$work/export.jsonl" ] || fail "audit export printed nothing"
grep -q '"kind":"keys.rotated"' "$work/export.jsonl" || fail "the export has no keys.rotated event"
next=$(sed -n 's/.*careid audit export --since \([0-9]*\).*/\1/p' "$work/export.err")
[ -n "$next" ] || fail "audit export did not say which --since to use next"
"$careid" audit export --since "$next" >"$work/export-2.jsonl" 2>/dev/null
[ ! -s "$work/export-2.jsonl" ] || fail "audit export --since $next repeated events"
echo "exported $(wc -l <"$work/export.jsonl") events; resuming from --since $next gives none"

step "Reload: a renewed TLS certificate; SIGHUP rereads it and the smartcard CAs and CRLs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$pki/renewed.key" -out "$pki/renewed.pem" -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost" 2>/dev/null
# Key first, then certificate, each replaced whole (as a renewal tool does).
cp "$pki/renewed.key" "$pki/server.key.new" && mv "$pki/server.key.new" "$pki/server.key"
cp "$pki/renewed.pem" "$pki/server.pem.new" && mv "$pki/server.pem.new" "$pki/server.pem"
kill -HUP "$pid"
reloaded=
for _ in $(seq 1 40); do
    if metrics >"$work/metrics-2.txt" \
        && grep -q '^careid_smartcard_trust_reloads_total{outcome="success"} 1' "$work/metrics-2.txt"; then
        reloaded=1
        break
    fi
    sleep 0.25
done
[ -n "$reloaded" ] || fail "no successful smartcard trust reload counted after SIGHUP"
served=$(openssl s_client -connect "127.0.0.1:$main_port" -servername localhost </dev/null 2>/dev/null \
    | openssl x509 -noout -fingerprint -sha256)
wanted=$(openssl x509 -in "$pki/renewed.pem" -noout -fingerprint -sha256)
[ "$served" = "$wanted" ] || fail "the renewed certificate is not served after SIGHUP ($served)"
echo "the renewed certificate is served"
running || fail "careid stopped on SIGHUP"
[ "$(readyz)" = ready ] || fail "/readyz not ready after SIGHUP"
echo "reloaded; still ready"

step "Stop: SIGTERM drains (/readyz 503 at once) and exits 0"
kill -TERM "$pid"
draining=
for _ in $(seq 1 15); do
    if [ "$(readyz)" = draining ]; then
        draining=1
        break
    fi
    sleep 0.1
done
[ -n "$draining" ] || fail "/readyz did not answer draining after SIGTERM"
if "$root/usr/local/bin/careid-healthcheck" "127.0.0.1:$metrics_port" 2>/dev/null; then
    fail "careid-healthcheck passed while draining"
fi
echo "/readyz: draining; careid-healthcheck fails"
stop_server

step "Restore: stop, put the backup in place (without the old -wal and -shm), start"
rm -f "$work/data/careid.db" "$work/data/careid.db-wal" "$work/data/careid.db-shm"
cp "$work/backup/careid.db" "$work/data/careid.db"
start_server restored
[ "$(jwks_kids)" = "$kids_before" ] || fail "after the restore the JWKS is not the one backed up"
echo "JWKS: the 3 keys of the backup (the rotation made after it is gone)"
"$careid" audit verify

step "Re-key: a new keys.encryption_key, the old one as keys.previous_encryption_key, careid keys reseal"
old_key=$CAREID_KEYS__ENCRYPTION_KEY
new_key=$(openssl rand -base64 32)
stop_server
echo "the new key alone, before the reseal: careid must refuse to start"
log=$work/serve-new-key-only.log
status=0
CAREID_KEYS__ENCRYPTION_KEY=$new_key timeout 60 "$bin" serve >"$log" 2>&1 || status=$?
# 0: it started and stopped by itself; 124: it ran until timeout stopped it.
if [ "$status" = 0 ] || [ "$status" = 124 ]; then
    fail "careid started with a key that does not open the stored signing keys"
fi
echo "refused: $(tail -n 1 "$log")"
export CAREID_KEYS__ENCRYPTION_KEY=$new_key
export CAREID_KEYS__PREVIOUS_ENCRYPTION_KEY=$old_key
start_server both-keys
"$careid" keys reseal
unset CAREID_KEYS__PREVIOUS_ENCRYPTION_KEY
stop_server
start_server new-key
echo "every stored signing key opens under the new key alone"

step "Emergency rotation: careid keys rotate --now"
"$careid" keys rotate --now | tee "$work/rotate-now.txt"
[ "$(grep -c 'signs now' "$work/rotate-now.txt")" = 3 ] || fail "keys rotate --now did not add 3 keys"
"$careid" audit verify
stop_server

step "Done: every step of the walk-through passed"
