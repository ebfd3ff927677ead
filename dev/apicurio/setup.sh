#!/usr/bin/env bash
# Downloads Apicurio Registry (a Confluent-compatible registry that kschema did not write) for the import
# tests, from Maven Central through Maven, into ~/.cache/kschema/apicurio-$VERSION when it is missing.
# The Maven local repository lives in the same cache, so a second machine set-up is offline.
# Apicurio 3.x needs Java 21 or newer at run time; the test harness looks for one (KSCHEMA_JAVA, the
# Temurin JDK beside the system Java, any /usr/lib/jvm/*) and says so when there is none.
set -euo pipefail
VERSION="${APICURIO_VERSION:-3.3.3}"
CACHE=${KSCHEMA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kschema}
HOME_DIR="$CACHE/apicurio-$VERSION"
M2_REPO="$CACHE/m2"
[ -f "$HOME_DIR/quarkus-run.jar" ] && exit 0
command -v mvn >/dev/null || { echo "apicurio: mvn is needed to download Apicurio Registry" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$HOME_DIR.partial"' EXIT
mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$M2_REPO" \
  org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
  -Dartifact="io.apicurio:apicurio-registry-app:$VERSION:tar.gz:all" \
  -DoutputDirectory="$tmp"
rm -rf "$HOME_DIR.partial"
mkdir -p "$HOME_DIR.partial"
tar -xzf "$tmp/apicurio-registry-app-$VERSION-all.tar.gz" -C "$HOME_DIR.partial"
[ -f "$HOME_DIR.partial/quarkus-run.jar" ] || { echo "apicurio: quarkus-run.jar missing from the archive" >&2; exit 1; }
mv "$HOME_DIR.partial" "$HOME_DIR"
echo "apicurio: $VERSION in $HOME_DIR" >&2
