#!/usr/bin/env bash
# Follows docs/DEPLOY.md as an operator would, so that the guide cannot drift from the code.
# It runs the guide's own shell blocks (those marked `<!-- deploy-check: NAME -->`) in a
# sandbox: the absolute paths of the guide move under a temp dir, `systemctl` starts and stops
# the binary as the service user, and `useradd` is left out. As root the service user is
# `nobody` (the guide's `mcp`), so ownership and modes are checked for real; otherwise the
# calling user stands in for it.
#
# Steps: install (user, binary, directories, env file, unit), start, register a client, back up
# while it runs (mode 0600), register a second client, restore (stop, remove -wal/-shm,
# install with the documented owner and mode, start), check the first client is there and the
# second is not, revoke everything, and a root-owned restore refused at start. The unit in the
# guide must equal docs/mcp-server-example.service, and `systemd-analyze security` (when
# present) must rate it OK. With nginx installed, the guide's site runs in front of the server
# with a throwaway certificate: the metadata comes through with the public URL's port kept in
# the Host, and the access log has the path without its query string (REQUIRE_NGINX=1: nginx
# must be there).
#
# Usage: docs/deploy-check.sh [BINARY] (default target/release/mcp-server-example); ports
# 18302 and 18303, or DEPLOY_CHECK_PORT and the one after it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=$(realpath "${1:-${MCP_SERVER_BIN:-target/release/mcp-server-example}}")
guide=docs/DEPLOY.md
port=${DEPLOY_CHECK_PORT:-18302}
nginx_port=$((port + 1))
sandbox=$(mktemp -d)
server=
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null || true
  rm -rf "$sandbox"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [[ -f "$sandbox/server.log" ]] && tail -5 "$sandbox/server.log"; exit 1; }

# The body of the guide's block NAME: the fenced block after its marker.
block() {
  awk -v name="$1" '
    $0 ~ "<!-- deploy-check: " name " -->" { found = 1; next }
    found && /^ *```/ { if (inside) exit; inside = 1; next }
    inside { sub(/^  /, ""); print }
  ' "$guide"
}

if [[ $(id -u) == 0 ]]; then
  user=nobody group=$(id -gn nobody)
else
  user=$(id -un) group=$(id -gn)
fi
# The guide's paths and user, moved into the sandbox.
sandboxed() {
  sed -e "s#/var/lib/mcp-server-example#$sandbox/var/lib/mcp-server-example#g" \
    -e "s#/var/backups/mcp-server-example#$sandbox/var/backups/mcp-server-example#g" \
    -e "s#/etc/systemd/system/#$sandbox/etc/#g" \
    -e "s#/etc/mcp-server-example.env#$sandbox/etc/mcp-server-example.env#g" \
    -e "s#/usr/local/bin/mcp-server-example#$sandbox/bin/mcp-server-example#g" \
    -e "s#target/release/mcp-server-example#$bin#g" \
    -e "s#-o mcp -g mcp#-o $user -g $group#g" \
    -e "s#-o root -g root#-o $(id -un) -g $(id -gn)#g"
}
mkdir -p "$sandbox/etc" "$sandbox/bin" "$sandbox/var/lib" "$sandbox/var/backups"
chmod 0755 "$sandbox"

# Run as the service user (the guide's `runuser -u mcp --`).
runner=()
[[ $(id -u) == 0 ]] && runner=(setpriv --reuid="$user" --regid="$group" --clear-groups)
runuser() {
  [[ "$1" == -u && "$2" == mcp && "$3" == -- ]] || fail "unexpected runuser $*"
  shift 3
  "${runner[@]}" "$@"
}
useradd() { :; }
health() { curl -fsS -o /dev/null -H "Host: 127.0.0.1:$port" "http://127.0.0.1:$port/.well-known/oauth-protected-resource/mcp"; }
# The unit's ExecStart, as its user, with its EnvironmentFile (ports moved into our range).
systemctl() {
  case "$1" in
    start)
      (set -a; . "$sandbox/etc/mcp-server-example.env"; PORT=$port; ALLOWED_HOSTS=127.0.0.1:$port
       # A public URL with a port, as behind the nginx below: its Host must arrive with the port.
       PUBLIC_URL=https://mcp.example.com:$nginx_port
       cd "$sandbox/var/lib/mcp-server-example"; exec "${runner[@]}" "$sandbox/bin/mcp-server-example") \
        >>"$sandbox/server.log" 2>&1 &
      server=$!
      for _ in $(seq 1 100); do
        health 2>/dev/null && return 0
        kill -0 "$server" 2>/dev/null || { server=; return 1; }
        sleep 0.1
      done
      fail "the server did not come up" ;;
    stop)
      kill -TERM "$server"
      wait "$server" || fail "the server exited with status $? after SIGTERM"
      server= ;;
    *) fail "unexpected systemctl $*" ;;
  esac
}
run_block() { eval "$(block "$1" | sandboxed)"; }

register() {
  curl -fsS -H "Host: 127.0.0.1:$port" -H 'Content-Type: application/json' \
    -d '{"client_name":"deploy check","redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}' \
    "http://127.0.0.1:$port/register" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])'
}
# 302 to the login page for a registered client; an error page for an unknown one.
authorize_status() {
  curl -s -o /dev/null -w '%{http_code}' -H "Host: 127.0.0.1:$port" \
    "http://127.0.0.1:$port/authorize?response_type=code&client_id=$1&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
}

echo "deploy check: install, as user $user"
(cd "$root"; run_block install)
[[ $(stat -c '%a %U' "$sandbox/var/lib/mcp-server-example") == "700 $user" ]] || fail "state directory owner/mode"
block env | sandboxed >"$sandbox/etc/mcp-server-example.env"
diff <(block unit) docs/mcp-server-example.service || fail "the guide's unit differs from docs/mcp-server-example.service"
if command -v systemd-analyze >/dev/null; then
  exposure=$(systemd-analyze security --offline=true docs/mcp-server-example.service 2>/dev/null | tail -1)
  echo "$exposure"
  [[ "$exposure" == *" OK "* ]] || fail "the unit is not rated OK"
fi
echo "deploy check: start, back up while serving, restore"
systemctl start || fail "the server did not start"
if ! command -v nginx >/dev/null; then
  [[ -z "${REQUIRE_NGINX:-}" ]] || fail "REQUIRE_NGINX is set, but nginx is not installed"
  echo "deploy check: nginx is not installed; the guide's nginx site is not checked"
else
  echo "deploy check: the guide's nginx site, with TLS on port $nginx_port"
  mkdir -p "$sandbox/nginx"
  openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=mcp.example.com -days 1 \
    -keyout "$sandbox/nginx/key.pem" -out "$sandbox/nginx/cert.pem" 2>/dev/null
  block nginx | sed -e "s#/etc/letsencrypt/live/mcp.example.com/fullchain.pem#$sandbox/nginx/cert.pem#" \
    -e "s#/etc/letsencrypt/live/mcp.example.com/privkey.pem#$sandbox/nginx/key.pem#" \
    -e "s#/var/log/nginx/#$sandbox/nginx/#" -e "s#listen 443 #listen 127.0.0.1:$nginx_port #" \
    -e '/listen \[::\]:443/d' -e "s#server 127.0.0.1:8000;#server 127.0.0.1:$port;#" >"$sandbox/nginx/site.conf"
  n="$sandbox/nginx"
  printf 'pid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp {\n client_body_temp_path %s/body;\n proxy_temp_path %s/proxy;\n fastcgi_temp_path %s/f;\n uwsgi_temp_path %s/u;\n scgi_temp_path %s/s;\n include %s/site.conf;\n}\n' \
    "$n" "$n" "$n" "$n" "$n" "$n" "$n" "$n" >"$n/nginx.conf"
  nginx -q -e "$n/error.log" -c "$n/nginx.conf" || fail "nginx refuses the guide's site: $(cat "$n/error.log")"
  trap 'nginx -e "$n/error.log" -c "$n/nginx.conf" -s stop 2>/dev/null || true; cleanup' EXIT
  public="https://mcp.example.com:$nginx_port"
  via_nginx() { curl -sk --resolve "mcp.example.com:$nginx_port:127.0.0.1" "$@"; }
  metadata=$(via_nginx "$public/.well-known/oauth-protected-resource/mcp")
  [[ "$metadata" == *"\"resource\":\"$public/mcp\""* ]] || fail "through nginx (Host with its port): $metadata"
  via_nginx -o /dev/null "$public/authorize?client_id=$(register)&state=do-not-log-me"
  nginx -e "$n/error.log" -c "$n/nginx.conf" -s stop
  sleep 0.2
  grep -q 'GET /authorize HTTP' "$n/mcp-server-example.access.log" || fail "no access log line: $(cat "$n"/*.log)"
  ! grep -q 'do-not-log-me' "$n/mcp-server-example.access.log" || fail "the access log holds a query string"
fi
kept=$(register)
run_block backup
backup=$(ls "$sandbox"/var/backups/mcp-server-example/oauth-*.sqlite3)
[[ $(stat -c '%a %U' "$backup") == "600 $user" ]] || fail "the backup's owner/mode: $(stat -c '%a %U' "$backup")"
lost=$(register)
BACKUP=$backup run_block restore
[[ $(stat -c '%a %U' "$sandbox/var/lib/mcp-server-example/oauth.sqlite3") == "600 $user" ]] || fail "restored owner/mode"
[[ $(authorize_status "$kept") == 302 ]] || fail "the client registered before the backup is gone"
[[ $(authorize_status "$lost") != 302 ]] || fail "the restore did not replace the database"
run_block revoke-all >/dev/null
systemctl stop

if [[ $(id -u) == 0 ]]; then
  echo "deploy check: a restore by plain cp as root is refused at start"
  cp "$backup" "$sandbox/var/lib/mcp-server-example/oauth.sqlite3"
  chown root:root "$sandbox/var/lib/mcp-server-example/oauth.sqlite3"
  chmod 0644 "$sandbox/var/lib/mcp-server-example/oauth.sqlite3"
  if systemctl start; then fail "the server started on a database it cannot write"; fi
  grep -q "is read-only for this process" "$sandbox/server.log" || fail "no clear message"
fi
echo "deploy check: OK"
