#!/bin/sh
# Install an unpacked CTLens bundle (this folder) on Linux; no Python needed.
#
#   ./install.sh                        for you: ~/.local/lib/ctlens, ~/.local/bin/ctlens, menu entry, icons
#   sudo PREFIX=/usr/local ./install.sh for everyone
#   ./install.sh --uninstall            (with the same PREFIX) removes what it installed
set -eu

PREFIX=${PREFIX:-"$HOME/.local"}
HERE=$(cd "$(dirname "$0")" && pwd)
LIB="$PREFIX/lib/ctlens"
BIN="$PREFIX/bin/ctlens"
SHARE="$PREFIX/share"
ID=org.ctlens.CTLens
SIZES="16 24 32 48 64 128 256 512"

refresh() {  # menus and icon themes pick the change up at once where these tools exist
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$SHARE/applications" || true
    command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t -f "$SHARE/icons/hicolor" || true
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -rf "$LIB"
    rm -f "$BIN" "$SHARE/applications/$ID.desktop" "$SHARE/metainfo/$ID.metainfo.xml" \
          "$SHARE/icons/hicolor/scalable/apps/ctlens.svg"
    for s in $SIZES; do rm -f "$SHARE/icons/hicolor/${s}x${s}/apps/ctlens.png"; done
    refresh
    echo "CTLens removed from $PREFIX"
    exit 0
fi

[ -x "$HERE/ctlens" ] || { echo "install.sh: run me from the unpacked CTLens bundle" >&2; exit 1; }
if [ "$HERE" != "$LIB" ]; then
    rm -rf "$LIB"
    mkdir -p "$LIB"
    cp -a "$HERE/." "$LIB/"
fi
mkdir -p "$PREFIX/bin" "$SHARE/applications" "$SHARE/metainfo"
ln -sf "$LIB/ctlens" "$BIN"
# The menu entry runs the installed executable by its full path: ~/.local/bin is not on every PATH.
sed -e "s|^Exec=ctlens|Exec=$BIN|" -e "s|^TryExec=ctlens|TryExec=$BIN|" \
    "$HERE/share/applications/$ID.desktop" > "$SHARE/applications/$ID.desktop"
cp "$HERE/share/metainfo/$ID.metainfo.xml" "$SHARE/metainfo/"
mkdir -p "$SHARE/icons"
cp -R "$HERE/share/icons/hicolor" "$SHARE/icons/"
refresh
echo "CTLens installed: $BIN (menu: CTLens). Remove with: $LIB/install.sh --uninstall"
