#!/bin/sh
# Installs a built careid binary and its configuration: the steps shared by the container image
# (deploy/Containerfile) and an install on a VM (docs/operations.md).
#
#   deploy/install.sh [options] BINARY
#
# Options (each also read from the environment variable in brackets; an option wins):
#   --destdir DIR     stage everything under DIR, for packaging or CI [DESTDIR, default: none]
#   --prefix DIR      the binary goes to PREFIX/bin/careid [PREFIX, default: /usr/local]
#   --sysconfdir DIR  configuration directory [SYSCONFDIR, default: /etc/careid]
#   --datadir DIR     the SQLite database (careid's state) [DATADIR, default: /var/lib/careid]
#   --uid N           uid and gid of the careid user when it is created [CAREID_UID, default: a
#                     system uid chosen by useradd; the container image uses 10001]
#   --no-user         create no user and change no ownership [CAREID_NO_USER=1]
#   --systemd         also install careid.service and careid-migrate.service into
#                     /etc/systemd/system [CAREID_SYSTEMD=1]
#
# What it does:
#   PREFIX/bin/careid                 the binary (0755)
#   PREFIX/bin/careid-healthcheck     /readyz on the metrics listener, with bash alone (0755)
#   SYSCONFDIR/careid.toml            deploy/careid.toml, with /var/lib/careid replaced by DATADIR
#                                     and /etc/careid by SYSCONFDIR (0640). An existing file is
#                                     kept: the new one is written beside it as careid.toml.dist
#   SYSCONFDIR/tls/, SYSCONFDIR/smartcard/
#                                     empty directories for the server certificate and key, and
#                                     the smartcard CAs and CRLs (yours to fill)
#   DATADIR                           careid's state (0700)
#   /etc/systemd/system/careid*.service (with --systemd), paths rewritten the same way
#
# Ownership: run as root, without --no-user and without --destdir, it creates the system group
# and user "careid" (with --uid: that uid and gid; an existing user is kept as it is), and gives
# DATADIR to careid and SYSCONFDIR and the configuration to root:careid. Otherwise (not root,
# --no-user, or --destdir, where a user made on this machine would be the wrong one) it creates
# no user and leaves ownership to the caller, so CI can run it unprivileged into a temp prefix.
#
# The keys.encryption_key is not written anywhere: give it to careid in the environment
# (CAREID_KEYS__ENCRYPTION_KEY) from your secret store; see docs/operations.md.
set -eu

usage() {
    sed -n '2,/^set -eu$/{/^set -eu$/d;s/^# \{0,1\}//;p;}' "$0" >&2
    exit "${1:-2}"
}

here=$(cd "$(dirname "$0")" && pwd)
destdir=${DESTDIR:-}
prefix=${PREFIX:-/usr/local}
sysconfdir=${SYSCONFDIR:-/etc/careid}
datadir=${DATADIR:-/var/lib/careid}
uid=${CAREID_UID:-}
no_user=${CAREID_NO_USER:-0}
systemd=${CAREID_SYSTEMD:-0}
binary=

while [ $# -gt 0 ]; do
    case $1 in
        --destdir) destdir=$2; shift 2 ;;
        --prefix) prefix=$2; shift 2 ;;
        --sysconfdir) sysconfdir=$2; shift 2 ;;
        --datadir) datadir=$2; shift 2 ;;
        --uid) uid=$2; shift 2 ;;
        --no-user) no_user=1; shift ;;
        --systemd) systemd=1; shift ;;
        -h|--help) usage 0 ;;
        -*) echo "install.sh: unknown option $1" >&2; usage ;;
        *)
            [ -z "$binary" ] || { echo "install.sh: one binary only" >&2; usage; }
            binary=$1; shift ;;
    esac
done

[ -n "$binary" ] || { echo "install.sh: name the careid binary to install" >&2; usage; }
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
    echo "install.sh: $binary is not an executable file" >&2
    exit 1
fi
for d in "$prefix" "$sysconfdir" "$datadir"; do
    case $d in
        *'|'*|*'&'*|*\\*) printf 'install.sh: %s: |, & and \\ are not supported in paths\n' "$d" >&2; exit 1 ;;
        /*) ;;
        *) echo "install.sh: $d must be an absolute path (use --destdir to stage elsewhere)" >&2; exit 1 ;;
    esac
done
case $uid in
    *[!0-9]*) echo "install.sh: --uid must be a number" >&2; exit 1 ;;
esac
for f in careid.toml careid-healthcheck; do
    [ -f "$here/$f" ] || { echo "install.sh: $here/$f is missing" >&2; exit 1; }
done

# Ownership only where it means something: root, installing into this system's own root.
own=0
if [ "$no_user" != 1 ] && [ -z "$destdir" ] && [ "$(id -u)" = 0 ]; then
    own=1
fi

# Paths in the shipped files are written for the defaults; rewrite them for this install.
rewrite() {
    sed -e "s|/var/lib/careid|$datadir|g" \
        -e "s|/etc/careid|$sysconfdir|g" \
        -e "s|/usr/local/bin/careid|$prefix/bin/careid|g" "$1"
}

umask 022
echo "install.sh: installing $binary into ${destdir:-/} (prefix $prefix, configuration $sysconfdir, data $datadir)"

mkdir -p "$destdir$prefix/bin" "$destdir$sysconfdir/tls" "$destdir$sysconfdir/smartcard" "$destdir$datadir"
# The file's absolute path, its directories' symbolic links resolved.
canonical() { (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd -P)" "$(basename "$1")"); }
if [ -e "$destdir$prefix/bin/careid" ] \
    && [ "$(canonical "$binary")" = "$(canonical "$destdir$prefix/bin/careid")" ]; then
    # Already in place (the container image copies it there): left untouched, so that the image
    # holds it once.
    echo "install.sh: $destdir$prefix/bin/careid is already in place"
else
    # Copy to a temporary name and rename: a running careid keeps its (old) file.
    cp "$binary" "$destdir$prefix/bin/.careid.new"
    chmod 0755 "$destdir$prefix/bin/.careid.new"
    mv -f "$destdir$prefix/bin/.careid.new" "$destdir$prefix/bin/careid"
fi
cp "$here/careid-healthcheck" "$destdir$prefix/bin/careid-healthcheck"
chmod 0755 "$destdir$prefix/bin/careid-healthcheck"

config=$destdir$sysconfdir/careid.toml
if [ -e "$config" ]; then
    rewrite "$here/careid.toml" > "$config.dist"
    chmod 0640 "$config.dist"
    echo "install.sh: kept the existing $config; the shipped one is $config.dist (compare them)"
else
    rewrite "$here/careid.toml" > "$config.tmp"
    chmod 0640 "$config.tmp"
    mv "$config.tmp" "$config"
fi
chmod 0750 "$destdir$sysconfdir" "$destdir$sysconfdir/tls" "$destdir$sysconfdir/smartcard"
chmod 0700 "$destdir$datadir"

if [ "$systemd" = 1 ]; then
    mkdir -p "$destdir/etc/systemd/system"
    for unit in careid.service careid-migrate.service; do
        rewrite "$here/$unit" > "$destdir/etc/systemd/system/$unit"
        chmod 0644 "$destdir/etc/systemd/system/$unit"
    done
    echo "install.sh: installed the systemd units; run: systemctl daemon-reload"
fi

if [ "$own" = 1 ]; then
    if ! getent group careid >/dev/null; then
        groupadd --system ${uid:+--gid "$uid"} careid
    fi
    if ! getent passwd careid >/dev/null; then
        # A uid above SYS_UID_MAX (the image's 10001) makes useradd warn; the key is --system.
        useradd --system ${uid:+--uid "$uid"} --gid careid --home-dir "$datadir" --no-create-home \
            --shell /usr/sbin/nologin --comment "careid OpenID Connect provider" careid 2>&1 \
            | grep -v 'greater than SYS_UID_MAX' >&2 || true
        getent passwd careid >/dev/null || { echo "install.sh: could not create the user careid" >&2; exit 1; }
    fi
    chown careid:careid "$datadir"
    chown root:careid "$sysconfdir" "$sysconfdir/tls" "$sysconfdir/smartcard" "$sysconfdir/careid.toml"
    [ ! -e "$sysconfdir/careid.toml.dist" ] || chown root:careid "$sysconfdir/careid.toml.dist"
    echo "install.sh: user careid is $(id careid)"
else
    echo "install.sh: no user created and no ownership changed (not root, --no-user or --destdir)"
fi
echo "install.sh: done"
