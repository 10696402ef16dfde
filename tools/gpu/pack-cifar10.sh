#!/usr/bin/env bash
# Packs the full CIFAR-10 binary release for a lent GPU machine, whose calls carry at most 64 MiB each:
# one xz stream (delta filter: neighbouring pixels are close, 30% smaller than plain xz) of a tar of the six
# .bin files and batches.meta.txt, split into parts of at most PART_MB (default 55) under .gpu/cifar10-parts/,
# with SHA256SUMS of the .bin files. Carry one part per call; tools/gpu/receive-cifar10.sh collects them on
# the device and unpacks once all have arrived.
#   tools/gpu/pack-cifar10.sh [CIFAR10_DIR]        # default ../shared/data/cifar10
set -euo pipefail
src=${1:-${CIFAR10_DIR:-../shared/data/cifar10}}
out=.gpu/cifar10-parts
part_mb=${PART_MB:-55}
files=(data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin batches.meta.txt)
for f in "${files[@]}"; do [ -f "$src/$f" ] || { echo "missing $src/$f" >&2; exit 2; }; done
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf "$out" && mkdir -p "$out"
(cd "$src" && sha256sum "${files[@]}") > "$out/SHA256SUMS"
tar -C "$src" -cf - "${files[@]}" | xz -T0 --delta=dist=1 --lzma2=preset=6 | split -b "${part_mb}M" -d -a 2 - "$out/part-"
ls "$out"/part-* | wc -l > "$out/PARTS"
du -sh "$out"/*
