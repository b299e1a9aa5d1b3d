#!/usr/bin/env bash
# Builds the Neraca container image without Docker or a registry: a Debian base root file system made by mmdebstrap
# from this machine's apt mirror, a self-contained `dotnet publish -r linux-x64`, assembled and committed with buildah
# into the local container storage that podman reads. The result matches the Dockerfile's image: non-root user 10001,
# no shell, /app/Neraca.Server as entrypoint, port 8080, SQLite data under /data. Needs root (mmdebstrap --mode=root).
#
#   scripts/build-image.sh [TAG]        default TAG: localhost/neraca:<git short sha>
#
# The base root file system is cached in $NERACA_IMAGE_CACHE (default /tmp/neraca-image-cache), keyed by the suite,
# the mirror, the package list and the hooks below, so a second build only publishes and commits (~1 min).
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-localhost/neraca:$(git rev-parse --short HEAD 2>/dev/null || echo dev)}
cache=${NERACA_IMAGE_CACHE:-/tmp/neraca-image-cache}
uid=10001

for tool in mmdebstrap buildah dotnet; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-image: $tool is missing (Debian: apt-get install mmdebstrap buildah)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "build-image: run as root (mmdebstrap --mode=root, buildah's root storage)" >&2; exit 2; }

. /etc/os-release
suite=${NERACA_IMAGE_SUITE:-${VERSION_CODENAME:-bookworm}}

# The host's apt sources as one-line entries ("deb URI SUITE COMPONENTS"), from both the classic and the deb822 format.
mirrors() {
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && grep -E '^\s*deb\s' "$f" | sed -E 's/\[[^]]*\]//' || true
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'function flush() { if (types ~ /(^| )deb( |$)/) { n = split(uris, u, " "); m = split(suites, s, " ");
                              for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print "deb " u[i] " " s[j] " " comps }
                            types = uris = suites = comps = "" }
         /^[[:space:]]*$/ { flush(); next }
         /^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0 } /^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); uris = $0 }
         /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 } /^Components:/ { sub(/^Components:[[:space:]]*/, ""); comps = $0 }
         END { flush() }' "$f"
  done
}
mapfile -t sources < <(mirrors | sed -E 's/[[:space:]]+/ /g; s/ $//' | grep -E " ${suite}(-updates|-security|/updates)? " | sort -u)
[ ${#sources[@]} -gt 0 ] || { echo "build-image: no apt source for $suite in /etc/apt/sources.list*" >&2; exit 2; }

# What the self-contained server needs from the OS: glibc (essential), the C++ runtime, OpenSSL, ICU, zlib, CA
# certificates for TLS to PostgreSQL/Redis/webhooks, time zones.
packages=libstdc++6,libgcc-s1,libssl3,libicu72,zlib1g,ca-certificates,tzdata
# Runs inside mmdebstrap on the finished tree ($1): the runtime user, its data folder, and no shell or package tools
# at run time (nothing in the image needs them; an attacker would).
hook='echo "neraca:x:'$uid':'$uid':neraca:/data:/usr/sbin/nologin" >> "$1/etc/passwd";
echo "neraca:x:'$uid':" >> "$1/etc/group";
mkdir -p "$1/data" "$1/app" && chown '$uid':'$uid' "$1/data";
rm -f "$1"/usr/bin/sh "$1"/usr/bin/bash "$1"/usr/bin/rbash "$1"/usr/bin/dash "$1"/bin/sh "$1"/bin/bash "$1"/bin/dash;
rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/usr/share/doc/* "$1"/usr/share/man/*'
key=$(printf '%s\n' "$suite" "$packages" "$hook" "${sources[@]}" | sha256sum | cut -c1-16)
rootfs="$cache/rootfs-$suite-$key.tar"
mkdir -p "$cache"
if [ ! -s "$rootfs" ]; then
  echo "build-image: base root file system ($suite: $packages) from ${sources[0]} ..."
  mmdebstrap --quiet --mode=root --variant=essential --include="$packages" --customize-hook="$hook" \
    "$suite" "${rootfs%.tar}.partial.tar" "${sources[@]}"  # the .tar ending makes mmdebstrap write a tarball
  mv "${rootfs%.tar}.partial.tar" "$rootfs"
fi

work=$(mktemp -d /tmp/neraca-image-build.XXXXXX)
ctr=
cleanup() { [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT

echo "build-image: dotnet publish (self-contained, linux-x64) ..."
# From a clean copy of the sources (what the Dockerfile's build context holds): the worktree's bin/ and obj/ stay as
# they are, so a build or test run there is not disturbed.
mkdir -p "$work/src"
tar --exclude=bin --exclude=obj -cf - global.json Directory.Build.props Directory.Packages.props src | tar -xf - -C "$work/src"
dotnet publish "$work/src/src/Neraca.Server/Neraca.Server.csproj" -c Release -r linux-x64 --self-contained true \
  -p:DebugType=none --nologo -v quiet -o "$work/app" >"$work/publish.log" 2>&1 \
  || { cat "$work/publish.log" >&2; exit 1; }

ctr=$(buildah from scratch)
buildah add --quiet "$ctr" "$rootfs" / >/dev/null
buildah add --quiet --chown "$uid:$uid" "$ctr" "$work/app" /app >/dev/null
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
buildah config \
  --user "$uid:$uid" --workingdir /app \
  --entrypoint '["/app/Neraca.Server"]' --cmd serve \
  --env ASPNETCORE_URLS=http://+:8080 --env NERACA_SQLITE_PATH=/data/neraca.db --env DOTNET_NOLOGO=1 \
  --port 8080 --volume /data --stop-signal SIGTERM \
  --label org.opencontainers.image.title=neraca --label org.opencontainers.image.revision="$revision" \
  --label org.opencontainers.image.source=https://github.com/neraca/neraca "$ctr"
buildah commit --quiet --rm "$ctr" "$tag" >/dev/null
ctr=
echo "build-image: built $tag"
