# arch/x86_64/arch.mk - toolchain and flags for the x86_64 kernel.
#
# Included by the top-level Makefile, which expects:
#   KCC          compiler driver, including the target selection
#   KLD          linker (GNU ld or ld.lld), run directly with the linker script
#   KAR          archiver for libstrata.a
#   ARCH_CFLAGS  code-generation flags for every kernel C and .S file
#   ARCH_LDFLAGS flags for KLD
#   KLIBS        extra libraries appended to the kernel link (none: newlib's
#                printf/strtod/qsort link without libgcc on x86_64, whose
#                long double is the x87 80-bit type in hardware)
#
# Code model: the kernel is linked in the top 2 GiB of the address space
# (0xffffffff80000000 + physical address), which is exactly what
# -mcmodel=kernel assumes: every symbol is reachable with a sign-extended
# 32-bit immediate.  newlib will be built with the same model.
#
# -z noexecstack: newlib's assembly (memset.S, ...) has no .note.GNU-stack.
#
# -mno-red-zone: exceptions and interrupts push their frame on the current
# kernel stack, so the 128 bytes below %rsp are not ours to use.
#
# SSE stays enabled (no -mno-sse): boot.S sets CR0.MP, clears CR0.EM and sets
# CR4.OSFXSR|OSXMMEXCPT before the first C instruction, so compiler-generated
# SSE moves and newlib's printf work.

ifeq ($(TOOLCHAIN),clang)
KCC := clang --target=x86_64-elf
KLD := ld.lld
KAR := $(if $(shell command -v llvm-ar 2>/dev/null),llvm-ar,ar)
ARCH_LDFLAGS_TOOL :=
else
KCC := gcc
KLD := ld
KAR := ar
# binutils >= 2.39 warns about RWX LOAD segments.  linker.ld's PHDRS keep
# text (R X), rodata (R) and data (R W) apart, so this only silences the
# warning for experiments that put code and data in one segment.
ARCH_LDFLAGS_TOOL := --no-warn-rwx-segments
endif

ARCH_CFLAGS  := -m64 -mno-red-zone -mcmodel=kernel -march=x86-64 -fno-asynchronous-unwind-tables
ARCH_LDFLAGS := -nostdlib -static -z max-page-size=0x1000 -z noexecstack $(ARCH_LDFLAGS_TOOL)
KLIBS        :=
