# arch/riscv64/arch.mk - toolchain and flags for the riscv64 kernel.
#
# Included by the top-level Makefile, which expects:
#   KCC          compiler driver, including the target selection
#   KLD          linker (GNU ld or ld.lld), run directly with linker.ld
#   KAR          archiver for libstrata.a
#   ARCH_CFLAGS  code-generation flags for every kernel C and .S file
#   ARCH_LDFLAGS flags for KLD
#   KLIBS        extra libraries appended to the kernel link
#
# -march=rv64imafdc_zicsr_zifencei_zba_zbb  RV64GC plus the bit-manipulation
#       extensions Zba and Zbb, which QEMU 7.2's default virt CPU has
#       ("rv64imafdch_..._zba_zbb_zbc_zbs_sstc" in its device tree).
#       Zbb is the clean answer to strata's __builtin_clz/ctz: with it they
#       are single clz/ctz instructions; without it mm/util.h counts bits
#       in C (a builtin would call libgcc's __clzdi2/__ctzdi2, outside the
#       platform contract: scripts/check-lib, RISCV_NOZBB=1).  setup.c checks the boot
#       CPU's riscv,isa for zbb and stops with a clear message if it is
#       missing.  (binutils 2.40 wants _zicsr/_zifencei spelled out; clang 14
#       implies them and rejects the names.)
# -mabi=lp64d           hardware double: boot.S sets sstatus.FS before any
#                       compiled code runs, and newlib's printf needs FP.
# -mcmodel=medany       PC-relative addressing: the image is linked at
#                       0x80200000, outside medlow's +-2 GiB around 0.
# -mno-relax (clang)    ld.lld 14 implements no RISC-V linker relaxation;
#                       newlib is built with -mno-relax for the same reason
#                       (scripts/build-newlib).  gcc kernels keep GNU ld's
#                       relaxation (call -> jal).
# KLIBS: libgcc, for gcc and clang alike: lp64's long double is IEEE quad
# in software, so newlib's printf %f and strtod need __extenddftf2,
# __trunctfdf2, __multf3, ... (as on aarch64).  libstrata.a itself needs
# nothing from it, with or without Zbb (above).  clang's builtins are not installed for
# riscv64, so clang kernels link the cross gcc's libgcc.a (same lp64d ABI).

ifeq ($(TOOLCHAIN),clang)
KCC   := clang --target=riscv64-unknown-elf
KLD   := ld.lld
KAR   := $(if $(shell command -v llvm-ar 2>/dev/null),llvm-ar,ar)
ARCH_MARCH := -march=rv64imafdc_zba_zbb -mno-relax
ARCH_LDFLAGS_TOOL :=
else
KCC   := riscv64-unknown-elf-gcc
KLD   := riscv64-unknown-elf-ld
KAR   := riscv64-unknown-elf-ar
ARCH_MARCH := -march=rv64imafdc_zicsr_zifencei_zba_zbb
# binutils >= 2.39 warns about RWX LOAD segments; linker.ld keeps text and
# data apart, this only silences the check for odd inputs.
ARCH_LDFLAGS_TOOL := --no-warn-rwx-segments
endif
# RISCV_NOZBB=1 (top-level Makefile): libstrata.a for rv64imac, a CPU
# with neither bit manipulation nor FP; scripts/check-lib proves it needs
# no libgcc (mm/util.h counts bits itself there).
ifeq ($(RISCV_NOZBB),1)
ARCH_MARCH := $(if $(filter clang,$(TOOLCHAIN)),-march=rv64imac -mno-relax,-march=rv64imac_zicsr_zifencei)
ARCH_MABI  := -mabi=lp64
else
ARCH_MABI  := -mabi=lp64d
endif
KLIBS := $(shell riscv64-unknown-elf-gcc -march=rv64imafdc_zicsr -mabi=lp64d -print-libgcc-file-name)

ARCH_CFLAGS  := $(ARCH_MARCH) $(ARCH_MABI) -mcmodel=medany \
	-fno-asynchronous-unwind-tables -fno-unwind-tables
ARCH_LDFLAGS := -nostdlib -static -z max-page-size=0x1000 -z noexecstack $(ARCH_LDFLAGS_TOOL)
