#!/bin/sh
# A web server's pre-start script (a container entrypoint, say):
#   prestart.sh node server.js
# brings the schema up to date, releases the locks that expired while the
# server was down, then becomes the server. Any failure stops the start:
# exit 4 (database unavailable) or 5 (not migrated) says why.
set -e
cd "$(dirname "$0")"
PATH="$PWD/node_modules/.bin:$PATH"
seatctl migrate --quiet
seatctl release-expired-locks --quiet
exec "$@"
