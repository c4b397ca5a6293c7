#!/bin/sh
# ensure-tools.sh GROUP... - make sure the tools a build step needs are installed.
#
# Groups: kernel (build and boot the ISO), host (host tests; clang for the TSan build), cross (32-bit,
# AArch64, riscv64 and s390x builds under qemu-user), bench (valgrind), picture (zlib for
# mmpicture), fuzz (clang and its libFuzzer runtime), coverage (gcc's gcov and gcovr).
# Silent when everything is there:
# make runs this on every invocation.  When something is missing it installs the
# Debian packages with apt-get (as root, or through passwordless sudo); otherwise it
# prints the command to run and exits 1.
#
# Adding a tool: one `need` line in the group below: need KIND WHAT PACKAGE, where KIND
# is cmd (a command on PATH), dir (a directory) or glob (a shell pattern that must
# match an existing path).

set -u

missing=""

# need KIND WHAT PACKAGE: queue PACKAGE when WHAT is absent.
need() {
	case $1 in
	cmd) command -v "$2" >/dev/null 2>&1 && return 0 ;;
	dir) [ -d "$2" ] && return 0 ;;
	glob)
		for f in $2; do
			[ -e "$f" ] && return 0
		done
		;;
	esac
	case " $missing " in
	*" $3 "*) ;;
	*) missing="${missing:+$missing }$3" ;;
	esac
}

check_group() {
	case $1 in
	kernel)
		need cmd gcc gcc
		need cmd ld binutils
		need cmd nasm nasm
		need cmd grub-mkrescue grub-common
		# grub-mkrescue without the BIOS platform files makes an ISO that does not boot
		# under SeaBIOS: the directory is the real requirement, not the command.
		need dir /usr/lib/grub/i386-pc grub-pc-bin
		# ... and without the x86_64-efi files an ISO that UEFI firmware cannot boot.
		need dir /usr/lib/grub/x86_64-efi grub-efi-amd64-bin
		need glob /usr/share/ovmf/OVMF.fd ovmf
		need cmd xorriso xorriso
		need cmd mformat mtools
		need cmd qemu-system-x86_64 qemu-system-x86
		need cmd timeout coreutils
		;;
	host)
		need cmd gcc gcc
		# The ThreadSanitizer build of test_mm_atomic (tests/host/host.mk: TSAN_CC).
		need cmd clang clang
		need glob '/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.tsan-x86_64.a' libclang-rt-dev
		;;
	cross)
		# Not gcc-multilib: in Debian 12 it conflicts with gcc-aarch64-linux-gnu; the
		# versioned package carries the same 32-bit libraries without the conflict.
		need glob '/usr/lib/gcc/x86_64-linux-gnu/*/32/libgcc.a' "gcc-$(gcc -dumpversion | cut -d. -f1)-multilib"
		need cmd clang clang
		need cmd aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
		need dir /usr/aarch64-linux-gnu/include libc6-dev-arm64-cross
		need cmd qemu-aarch64 qemu-user
		need cmd qemu-i386 qemu-user
		need cmd riscv64-linux-gnu-gcc gcc-riscv64-linux-gnu
		need dir /usr/riscv64-linux-gnu/include libc6-dev-riscv64-cross
		need cmd qemu-riscv64 qemu-user
		# The one big-endian host (the frame word's byte order, mm/internal.h).
		need cmd s390x-linux-gnu-gcc gcc-s390x-linux-gnu
		need dir /usr/s390x-linux-gnu/include libc6-dev-s390x-cross
		need cmd qemu-s390x qemu-user
		;;
	bench)
		need cmd valgrind valgrind
		;;
	picture)
		# mmpicture writes PNG with zlib (deflate and the chunk CRCs): header and library.
		need cmd gcc gcc
		need glob /usr/include/zlib.h zlib1g-dev
		need glob '/usr/lib/*/libz.so' zlib1g-dev
		;;
	fuzz)
		need cmd clang clang
		# -fsanitize=fuzzer links this archive; clang alone does not pull it in.
		need glob '/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a' libclang-rt-dev
		;;
	coverage)
		need cmd gcc gcc
		need cmd gcov gcc
		need cmd gcovr gcovr
		;;
	*)
		echo "ensure-tools.sh: unknown group '$1' (kernel, host, cross, bench, picture, fuzz, coverage)" >&2
		exit 2
		;;
	esac
}

if [ $# -eq 0 ]; then
	echo "usage: sh tests/scripts/ensure-tools.sh GROUP... (kernel, host, cross, bench, picture, fuzz, coverage)" >&2
	exit 2
fi

recheck() {
	missing=""
	for g in "$@"; do
		check_group "$g"
	done
}

recheck "$@"
[ -z "$missing" ] && exit 0

# make -j starts several groups at once, and dpkg allows one apt-get at a time: install
# under one lock (flock, util-linux), re-checking once it is held, since the group that
# held it before may have installed these tools already.
if [ -z "${ENSURE_TOOLS_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
	ENSURE_TOOLS_LOCKED=1 exec flock "${TMPDIR:-/tmp}/labyrinth-ensure-tools.lock" sh "$0" "$@"
fi

pkgs=$missing
if [ "$(id -u)" = 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	sudo="sudo"
else
	echo "Missing tools. Run: sudo apt-get install -y $pkgs"
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "Missing tools (packages named for Debian: $pkgs), and there is no apt-get here." >&2
	echo "Missing tools. Run: sudo apt-get install -y $pkgs"
	exit 1
fi

echo "ensure-tools: installing $pkgs" >&2
# $sudo is empty or "sudo" and $pkgs a list: both deliberately unquoted.
# shellcheck disable=SC2086
if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 ||
	! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		$pkgs >&2; then
	echo "ensure-tools: apt-get failed." >&2
	echo "Missing tools. Run: sudo apt-get install -y $pkgs"
	exit 1
fi

recheck "$@"
if [ -n "$missing" ]; then
	echo "ensure-tools: still missing after installing: $missing" >&2
	echo "Missing tools. Run: sudo apt-get install -y $missing"
	exit 1
fi
exit 0
