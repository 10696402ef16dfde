#!/usr/bin/env bash
# Device side: copies the CIFAR-10 parts carried in this call (.gpu/cifar10-parts/part-*) into /tmp/cifar10-parts
# (which outlives the call while the machine stays warm); once every part has arrived, unpacks them into
# /tmp/cifar10 and checks each file's SHA-256. Prints what is still missing. Exit 0 when /tmp/cifar10 is complete.
set -euo pipefail
here=.gpu/cifar10-parts
keep=/tmp/cifar10-parts
mkdir -p "$keep" /tmp/cifar10
cp -n "$here"/SHA256SUMS "$here"/PARTS "$keep"/ 2>/dev/null || true
for p in "$here"/part-*; do [ -f "$p" ] && cp "$p" "$keep"/; done
want=$(cat "$keep/PARTS")
have=$(ls "$keep"/part-* 2>/dev/null | wc -l)
if [ "$have" -lt "$want" ]; then echo "cifar10: $have of $want parts here"; exit 3; fi
if (cd /tmp/cifar10 && sha256sum -c --quiet "$keep/SHA256SUMS" >/dev/null 2>&1); then echo "cifar10: complete"; exit 0; fi
cat "$keep"/part-* | python3 -c "
import lzma, sys, tarfile
with lzma.open(sys.stdin.buffer) as s, tarfile.open(fileobj=s, mode='r|') as t:
    t.extractall('/tmp/cifar10')
"
(cd /tmp/cifar10 && sha256sum -c --quiet "$keep/SHA256SUMS") && echo "cifar10: unpacked and verified in /tmp/cifar10"
