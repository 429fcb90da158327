#!/usr/bin/env bash
# benchmarks/fingerprints.py on aarch64, from an x86-64 Debian machine, as root:
#
#     bash benchmarks/arm64_fingerprints.sh [ROOT] > aarch64.txt
#     python benchmarks/fingerprints.py > x86_64.txt && diff x86_64.txt aarch64.txt
#
# Builds (once) a Debian 12 arm64 system in ROOT (default /var/tmp/kqcodec-arm64) with
# debootstrap, which QEMU's user-mode emulation runs through binfmt_misc: the ARM instructions
# themselves (NEON, fused multiply-add), with their own rounding. In it: a venv with numpy at the
# version this machine's Python has, the other libraries an encode needs, and this commit of
# kqcodec with its kernels compiled by Debian's arm64 gcc. Then it prints the fingerprints of
# ../shared/corpus/public (extra arguments go to fingerprints.py). 23 minutes the first time on
# a 2-core machine, 10 after. Only the first line of the two outputs should differ.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-/var/tmp/kqcodec-arm64}
shift || true
numpy_version=$(python -c "import numpy; print(numpy.__version__)")
export DEBIAN_FRONTEND=noninteractive

if ! command -v debootstrap >/dev/null || [ ! -e /usr/bin/qemu-aarch64-static ]; then
    apt-get update -q >&2
    apt-get install -y -q qemu-user-static debootstrap binfmt-support >&2
fi
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 >&2 || true
if [ ! -x "$root/root/venv/bin/python" ]; then
    debootstrap --arch=arm64 \
        --include=python3,python3-venv,python3-dev,gcc,zlib1g-dev,libc6-dev,ca-certificates \
        bookworm "$root" >&2
    # This machine's trust store, in case its connections go through a proxy of its own.
    cp /etc/ssl/certs/ca-certificates.crt "$root/root/host-ca.crt"
    chroot "$root" /usr/bin/python3 -m venv /root/venv
    chroot "$root" /usr/bin/env SSL_CERT_FILE=/root/host-ca.crt REQUESTS_CA_BUNDLE=/root/host-ca.crt \
        /root/venv/bin/pip install -q "numpy==$numpy_version" scikit-learn pypng deflate Pillow \
        pandas tqdm tabulate Cython setuptools wheel >&2
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount --bind /proc "$root/proc"
mount --bind /dev "$root/dev"
trap 'umount "$root/proc" "$root/dev"' EXIT

# This commit's files, and the pictures.
rm -rf "$root/root/kqcodec" "$root/root/shared"
mkdir -p "$root/root/kqcodec" "$root/root/shared/corpus"
git archive HEAD | tar -x -C "$root/root/kqcodec"
cp -r ../shared/corpus/public "$root/root/shared/corpus/"
chroot "$root" /bin/sh -c 'cd /root/kqcodec && /root/venv/bin/pip install -q --no-build-isolation --no-deps -e .' >&2
chroot "$root" /bin/sh -c 'cd /root/kqcodec && /root/venv/bin/python benchmarks/fingerprints.py "$@"' \
    fingerprints "$@"
