#!/bin/sh
# Installs what is missing (Debian 12), builds, and starts the receiver under
# lighttpd (mod_fastcgi) on 127.0.0.1 with an embedded SQLite database and a
# sample hook directory, then prints the URL and a signed curl to try.
# Everything lives in ./demo-run; Ctrl-C stops the server.
#   PORT=8080 ./demo.sh
set -eu
cd "$(dirname "$0")"
top=$PWD
. ./contrib/deps.sh
install_packages $BUILD_PACKAGES $DEMO_PACKAGES

[ -x configure ] || autoreconf -fi
mkdir -p build/plain
(cd build/plain && { [ -f Makefile ] || ../../configure -q; } && make -s -j"$(nproc 2>/dev/null || echo 2)" cfimages-webhook)
bin=$top/build/plain/cfimages-webhook

run=$top/demo-run
port=${PORT:-8080}
mkdir -p "$run/hooks/uploaded.d" "$run/www"
chmod 0755 "$run/hooks" "$run/hooks/uploaded.d"
[ -f "$run/secret" ] || { od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$run/secret"; }
chmod 0600 "$run/secret"
cat > "$run/cfimages-webhook.conf" <<CONF
# Demo configuration (see cfimages-webhook.conf(5)).
secret_file = $run/secret
db = $run/webhook.db
hooks_dir = $run/hooks
log_level = info
CONF
install -m 0755 "$top/contrib/hooks/uploaded" "$run/hooks/uploaded"
install -m 0755 "$top/contrib/hooks/failed" "$run/hooks/failed"
rm -f "$run/webhook.db" "$run/webhook.db-wal" "$run/webhook.db-shm" "$run/hooks.log" # a fresh demo each time
"$bin" --config "$run/cfimages-webhook.conf" init >/dev/null
"$bin" --config "$run/cfimages-webhook.conf" register demo-image-1 --metadata '{"user":"demo"}' >/dev/null

cat > "$run/lighttpd.conf" <<CONF
server.modules = ("mod_fastcgi")
server.bind = "127.0.0.1"
server.port = $port
server.document-root = "$run/www"
server.errorlog = "$run/error.log"
server.pid-file = "$run/lighttpd.pid"
fastcgi.server = ("/webhook" => ((
	"bin-path" => "$bin",
	"socket" => "$run/fcgi.sock",
	"max-procs" => 2,
	"check-local" => "disable",
	"bin-environment" => ("CFIMAGES_WEBHOOK_CONFIG" => "$run/cfimages-webhook.conf"),
)))
CONF

body='{"id":"demo-image-1","uploaded":"2024-01-01T12:00:00.000Z","variants":["https://imagedelivery.net/x/demo-image-1/public"]}'
printf '%s' "$body" > "$run/delivery.json"
sig=$("$bin" --config "$run/cfimages-webhook.conf" sign --scheme hex "$run/delivery.json")

cat <<MSG

cfimages-webhook is listening on http://127.0.0.1:$port/webhook
(lighttpd + FastCGI; database $run/webhook.db; hooks in $run/hooks;
server log $run/error.log)

Try a signed delivery:

  curl -i -X POST -H 'Content-Type: application/json' -H '$sig' \\
       --data-binary @$run/delivery.json http://127.0.0.1:$port/webhook

Then look at what happened:

  $bin --config $run/cfimages-webhook.conf show demo-image-1
  $bin --config $run/cfimages-webhook.conf deliveries
  $bin --config $run/cfimages-webhook.conf hooks list
  cat $run/hooks.log

Press Ctrl-C to stop.
MSG
lighttpd_bin=$(command -v lighttpd || echo /usr/sbin/lighttpd)
exec "$lighttpd_bin" -D -f "$run/lighttpd.conf"
