#!/usr/bin/env bash
# Starts a private Prosody XMPP server on 127.0.0.1 for trying `esession chat`.
#   bash scripts/local-prosody.sh [DIR]      (default DIR: /tmp/esession-prosody)
# Creates DIR with a private CA and a certificate for "localhost" (DIR/certs/ca.crt is the --ca-file), a config that
# listens on loopback only (c2s port 25222, STARTTLS), accounts alice@localhost
# and bob@localhost (passwords in DIR/alice.password and DIR/bob.password) who
# are each other's contacts (sharing presence, as after an accepted subscription
# request: XEP-0189 keys are readable by such contacts), and runs Prosody in the
# foreground until Ctrl-C. Needs: prosody, openssl.
set -euo pipefail
DIR=$(realpath -m "${1:-/tmp/esession-prosody}")
PORT=${ESESSION_DEMO_PORT:-25222}
command -v prosody >/dev/null || { echo "prosody is not installed (Debian: apt-get install prosody)" >&2; exit 1; }
mkdir -p "$DIR/data" "$DIR/certs"
if [ ! -f "$DIR/certs/localhost.crt" ]; then
    # A private CA, and a server certificate it signs (rustls refuses a
    # self-signed CA certificate used directly as the server's certificate).
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=esession test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
        -keyout "$DIR/certs/ca.key" -out "$DIR/certs/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$DIR/certs/localhost.key" -out "$DIR/certs/localhost.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$DIR/certs/ext.cnf"
    openssl x509 -req -in "$DIR/certs/localhost.csr" -CA "$DIR/certs/ca.crt" -CAkey "$DIR/certs/ca.key" \
        -CAcreateserial -days 3650 -extfile "$DIR/certs/ext.cnf" -out "$DIR/certs/localhost.crt" 2>/dev/null
fi
cat > "$DIR/prosody.cfg.lua" <<CFG
run_as_root = true
pidfile = "$DIR/prosody.pid"
data_path = "$DIR/data"
log = { { levels = { min = "info" }, to = "file", filename = "$DIR/prosody.log" } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $PORT }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
modules_disabled = { "s2s" }
-- carbons and mam as most servers run them: a second device gets copies, and
-- a message archive keeps chats (esession keeps off-the-record sessions out).
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "smacks"; "pep"; "carbons"; "mam" }
default_archive_policy = true
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
VirtualHost "localhost"
  ssl = { key = "$DIR/certs/localhost.key"; certificate = "$DIR/certs/localhost.crt"; }
CFG
for user in alice bob; do
    [ -f "$DIR/$user.password" ] || head -c 12 /dev/urandom | base64 | tr -d '/+=' > "$DIR/$user.password"
    chmod 600 "$DIR/$user.password"
    prosodyctl --config "$DIR/prosody.cfg.lua" register "$user" localhost "$(cat "$DIR/$user.password")"
done
# Each in the other's roster with subscription "both" (Prosody's internal storage).
mkdir -p "$DIR/data/localhost/roster"
for pair in "alice bob" "bob alice"; do
    set -- $pair
    roster="$DIR/data/localhost/roster/$1.dat"
    [ -f "$roster" ] || printf 'return {\n\t[false] = { ["version"] = 1; ["pending"] = {}; };\n\t["%s@localhost"] = { ["subscription"] = "both"; ["groups"] = {}; };\n};\n' "$2" > "$roster"
done
echo "Prosody on 127.0.0.1:$PORT, accounts alice@localhost and bob@localhost (each other's contacts)."
echo "CA certificate (use as --ca-file): $DIR/certs/ca.crt"
echo "Passwords: $DIR/alice.password, $DIR/bob.password. Ctrl-C stops the server."
exec prosody --config "$DIR/prosody.cfg.lua" -F
