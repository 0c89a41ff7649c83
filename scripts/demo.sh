#!/usr/bin/env bash
# Coffer's main job on the embedded default, end to end, on a real disk:
# build a small GPT disk with an ext4 filesystem full of real files, back it up, change
# some files inside it, back it up again, list the snapshots, restore the latest, check the
# restored disk against the original and with e2fsck, verify every chunk, print the stats.
# Usage: npm run demo            (work files in $COFFER_DEMO_DIR, default /tmp/coffer-demo)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${COFFER_DEMO_DIR:-/tmp/coffer-demo}"
export PATH="$PATH:/usr/sbin:/sbin"
coffer() { node "$root/bin/coffer.js" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# --- tools: sfdisk (fdisk), mke2fs/debugfs/e2fsck (e2fsprogs) ---------------------------
need=()
command -v sfdisk >/dev/null || need+=(fdisk)
command -v mke2fs >/dev/null && command -v debugfs >/dev/null || need+=(e2fsprogs)
if ((${#need[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
  else
    echo "the demo needs: sudo apt-get install ${need[*]}" >&2
    exit 2
  fi
fi
[ -f "$root/dist/src/cli/main.js" ] || (cd "$root" && npm run --silent prepare)

rm -rf "$work" && mkdir -p "$work/files"
disk="$work/web01.raw"
repo="$work/repo"
export COFFER_PASSWORD="demo passphrase"

step "building a 1 GiB disk: GPT, one 600 MiB ext4 partition with real files from this machine"
cp -r /usr/share/doc "$work/files/doc" 2>/dev/null || true
cp -r /usr/share/common-licenses "$work/files/licenses" 2>/dev/null || true
cp "$(command -v node)" "$work/files/" 2>/dev/null || true
truncate -s 1G "$disk"
printf 'label: gpt\nstart=2048, size=%d, name=root\n' $((600 * 2048)) | sfdisk -q "$disk"
offset=$((2048 * 512))
mke2fs -q -F -t ext4 -E offset=$offset,nodiscard -d "$work/files" "$disk" 600M
du -h --apparent-size "$disk" | sed 's/\t.*/ apparent size/'
du -h "$disk" | sed 's/\t.*/ allocated (the rest was never written)/'

step "coffer init"
coffer init -r "$repo"

step "first backup (full)"
coffer backup -r "$repo" --vm web01 --tag demo "$disk"

step "changing the VM's disk: two files added, one removed"
debugfs -w -R "write /etc/services services" "$disk?offset=$offset" >/dev/null 2>&1
debugfs -w -R "write /etc/os-release os-release" "$disk?offset=$offset" >/dev/null 2>&1
debugfs -w -R "rm /licenses/GPL-3" "$disk?offset=$offset" >/dev/null 2>&1 || true

step "second backup (incremental: everything is read and hashed, only changed blocks are stored)"
coffer backup -r "$repo" --vm web01 --tag demo "$disk"

step "coffer snapshots"
coffer snapshots -r "$repo"

step "restore the latest snapshot and compare it with the disk"
coffer restore -r "$repo" web01:latest --to "$work/restored.raw"
cmp "$disk" "$work/restored.raw" && echo "restored disk is byte-identical to the source"
e2fsck -fn "$work/restored.raw?offset=$offset" >/dev/null 2>&1 && echo "e2fsck: the restored filesystem is clean"
debugfs -R "cat /os-release" "$work/restored.raw?offset=$offset" 2>/dev/null | head -2

step "coffer verify --read-data"
coffer verify -r "$repo" --read-data

step "coffer stats"
coffer stats -r "$repo"
printf '\nall of it is in %s; remove it with: rm -rf %s\n' "$work" "$work"
