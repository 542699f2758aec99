# arch/aarch64/arch.mk - toolchain and flags for the aarch64 kernel.
#
# Included by the top-level Makefile, which expects:
#   KCC          compiler driver, including the target selection
#   KLD          linker (GNU ld or ld.lld), run directly with linker.ld
#   KAR          archiver for libstrata.a
#   ARCH_CFLAGS  code-generation flags for every kernel C and .S file
#   ARCH_LDFLAGS flags for KLD
#   KLIBS        extra libraries appended to the kernel link
#
# -march=armv8-a        runs on cortex-a57 and on -cpu max.  No LSE atomics:
#                       they are UNDEFINED on cortex-a57.
# -mno-outline-atomics  gcc would otherwise call __aarch64_ldadd8_acq_rel & co
#                       (libgcc helpers that probe the CPU through Linux).
# -mstrict-align        with the MMU off every access is Device memory, where
#                       unaligned accesses fault on real hardware; also
#                       correct for Device MMIO later.
# FP/SIMD stays enabled (no -mgeneral-regs-only): boot.S sets
# CPACR_EL1.FPEN before any C runs, and newlib's printf needs FP.
# KLIBS: libgcc, for gcc and clang alike: 128-bit division helpers and
# newlib's long double (__extenddftf2, __trunctfdf2, __multf3, ... used by
# printf's %f and strtod).  clang's builtins are not installed for
# aarch64-elf, so clang kernels link the cross gcc's libgcc.a (ld.lld
# reads it fine; same AAPCS64 ABI).

ifeq ($(TOOLCHAIN),clang)
KCC   := clang --target=aarch64-elf
KLD   := ld.lld
KAR   := $(if $(shell command -v llvm-ar 2>/dev/null),llvm-ar,ar)
KLIBS := $(shell aarch64-linux-gnu-gcc -print-libgcc-file-name)
ARCH_LDFLAGS_TOOL :=
else
KCC   := aarch64-linux-gnu-gcc
KLD   := aarch64-linux-gnu-ld
KAR   := aarch64-linux-gnu-ar
KLIBS := $(shell aarch64-linux-gnu-gcc -print-libgcc-file-name)
# binutils >= 2.39 warns about RWX LOAD segments; linker.ld keeps text and
# data apart, this only silences the check for odd inputs.
ARCH_LDFLAGS_TOOL := --no-warn-rwx-segments
endif

ARCH_CFLAGS  := -march=armv8-a -mstrict-align -mno-outline-atomics \
	-fno-asynchronous-unwind-tables -fno-unwind-tables
ARCH_LDFLAGS := -nostdlib -static -z max-page-size=0x1000 -z noexecstack $(ARCH_LDFLAGS_TOOL)
