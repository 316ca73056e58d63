#!/bin/sh
# Install or upgrade scorm-appliance as a systemd service from the single-file build. Run as root:
#
#   sudo sh packaging/linux/install.sh scorm-appliance-linux-x86_64.pyz
#
# Creates the system user `scorm-appliance`, puts the file in /opt/scorm-appliance, the unit in
# /etc/systemd/system, the admin wrapper in /usr/local/bin, and the data in /var/lib/scorm-appliance.
# On an upgrade it first takes a backup into /var/backups/scorm-appliance/ with the version installed
# until now, then replaces the file and restarts the service (migrations run at its start).
set -eu

PYZ="${1:?usage: sudo sh install.sh path/to/scorm-appliance-linux-<arch>.pyz}"
HERE=$(cd "$(dirname "$0")" && pwd)
NAME=scorm-appliance
DATA=/var/lib/$NAME
BACKUPS=/var/backups/$NAME

[ "$(id -u)" = 0 ] || { echo "Run this as root (sudo)." >&2; exit 1; }
[ -f "$PYZ" ] || { echo "No such file: $PYZ" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is missing: install it (apt install python3)." >&2; exit 1; }
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "python3 is $(python3 -V 2>&1); scorm-appliance needs 3.11 or newer." >&2; exit 1; }
# the file's own preamble checks the Python version and processor it was built for
SHIV_ROOT=$(mktemp -d) python3 "$PYZ" --version >/dev/null \
    || { echo "$PYZ does not run on this machine (see the message above)." >&2; exit 1; }

if ! id "$NAME" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin "$NAME"
fi
install -d -o "$NAME" -g "$NAME" -m 0750 "$DATA" "/var/cache/$NAME" "$BACKUPS"

if [ -f "$DATA/registry.db" ] && [ -f "/opt/$NAME/$NAME.pyz" ]; then
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    echo "Upgrade: backing up $DATA to $BACKUPS/pre-upgrade-$stamp first"
    "$HERE/$NAME" backup "$BACKUPS/pre-upgrade-$stamp" \
        || { echo "The backup failed: nothing was changed." >&2; exit 1; }
fi

install -d -m 0755 "/opt/$NAME"
install -m 0644 "$PYZ" "/opt/$NAME/$NAME.pyz.new"
mv "/opt/$NAME/$NAME.pyz.new" "/opt/$NAME/$NAME.pyz"
install -m 0644 "$HERE/$NAME.service" "/etc/systemd/system/$NAME.service"
install -m 0755 "$HERE/$NAME" "/usr/local/bin/$NAME"
if [ ! -f "$DATA/settings.toml" ]; then
    cat > "$DATA/settings.toml" <<'TOML'
# scorm-appliance settings (docs/configuration.md); restart the service after a change.
host = "0.0.0.0"   # serve the LAN; "127.0.0.1" serves this machine only
port = 8080
TOML
    chown "$NAME:$NAME" "$DATA/settings.toml"
    chmod 0640 "$DATA/settings.toml"
fi

systemctl daemon-reload
systemctl enable "$NAME" >/dev/null
systemctl restart "$NAME"
echo "scorm-appliance is running: systemctl status $NAME; logs: journalctl -u $NAME -f"
echo "Next: sudo $NAME tenants create \"My Organisation\" && sudo $NAME keys create --tenant \"My Organisation\""
