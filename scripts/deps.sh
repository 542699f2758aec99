#!/usr/bin/env bash
# scripts/deps.sh - install the Debian packages strata's build needs, but
# only those whose tool is missing.  Idempotent: a second run installs
# nothing and prints nothing.  `make run` and `make test` call it.
#
#   scripts/deps.sh           tools for building, booting and testing
#   scripts/deps.sh --bench   also valgrind and the peer allocators
set -euo pipefail

# tool-or-file  package
need=(
	"qemu-system-x86_64 qemu-system-x86"
	"qemu-system-aarch64 qemu-system-arm"
	"aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu"
	"aarch64-linux-gnu-ld binutils-aarch64-linux-gnu"
	"qemu-system-riscv64 qemu-system-misc"
	"/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin qemu-system-data"
	"riscv64-unknown-elf-gcc gcc-riscv64-unknown-elf"
	"riscv64-unknown-elf-ld binutils-riscv64-unknown-elf"
	"gcc gcc"
	"g++ g++"
	"make make"
	"clang clang"
	"ld.lld lld"
	"llvm-ar llvm"
	"gdb-multiarch gdb-multiarch"
	"python3 python3"
	"timeout coreutils"
	"sqlite3 sqlite3"
	"git git"
	"bc bc"
	"/usr/src/newlib/newlib-3.3.0.tar.xz newlib-source"
	"/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a libclang-rt-14-dev"
)
if [[ "${1:-}" == "--bench" ]]; then
	need+=(
		"valgrind valgrind"
		"/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 libjemalloc2"
		"/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 libmimalloc2.0"
		"/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 libtcmalloc-minimal4"
	)
fi

missing=()
for entry in "${need[@]}"; do
	tool=${entry% *}
	pkg=${entry#* }
	if [[ $tool == /* ]]; then
		[[ -e $tool ]] && continue
	else
		command -v "$tool" >/dev/null 2>&1 && continue
	fi
	missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "deps: installing missing Debian packages: ${missing[*]}"
SUDO=
if [[ $(id -u) -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=sudo
	else
		echo "deps: not root and no sudo; please install: ${missing[*]}" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${missing[*]}"
