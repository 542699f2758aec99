# strata - one entry point for building, booting, testing and benchmarking.
#
#   make run                       build the x86_64 kernel and boot it in QEMU
#   make ARCH=aarch64 run          the same on aarch64 (ARCH=riscv64: riscv64)
#   make test                      host tests, then QEMU boots of all three arches
#   make debug                     boot halted, with a gdb script (gdb-multiarch)
#   make soak                      hours of stress, fuzzing, real programs (scripts/soak)
#   make ARCH=host                 host build: unit tests and libstrata
#   make lib                       build/<arch>/libstrata.a from mm/ alone
#
# Variables: ARCH=x86_64|aarch64|riscv64|host  TOOLCHAIN=gcc|clang
#            KARGS="test=all seed=7"   MEM=512M   SMP=1   V=1 (echo commands)
#            RISCV_NOZBB=1 (with ARCH=riscv64 lib: rv64imac, no Zbb)
#            FAULT_INJECT=1 (a kernel: fault injection compiled in, in
#            build/<arch>-faults/; boot it with KARGS="mm.fault=pfa:every=7")

ARCH      ?= x86_64
TOOLCHAIN ?= gcc
MEM       ?= 512M
SMP       ?= 1
KARGS     ?=
PREFIX    ?= /usr/local

ifeq ($(TOOLCHAIN),clang)
BUILD := build/$(ARCH)-clang
else
BUILD := build/$(ARCH)
endif

# RISCV_NOZBB=1: mm/ for an rv64imac CPU without bit-manipulation
# instructions (build/riscv64-nozbb/libstrata.a; `make lib` only, the
# demo kernel needs FP), where __builtin_clz/ctz would call libgcc.
ifeq ($(RISCV_NOZBB),1)
BUILD := $(BUILD)-nozbb
endif

# FAULT_INJECT=1: mm/ and everything including its headers built with
# -DMM_FAULT_INJECT=1 (strata/fault.h), so the kernel's mm.fault= works.
ifeq ($(FAULT_INJECT),1)
BUILD := $(BUILD)-faults
FAULT_CFLAGS := -DMM_FAULT_INJECT=1
endif

ifneq ($(V),1)
Q := @
endif

.DEFAULT_GOAL := all
.PHONY: all run test test-host test-qemu debug clean lib install deps bench soak minikernel fuzz

WARN := -Wall -Wextra -Werror -Wno-unused-parameter
MM_INC := -Imm/include

# ---------------------------------------------------------------- host build
ifeq ($(ARCH),host)
include arch/host/arch.mk

# tests/host/tsan_*.c: threaded tests under ThreadSanitizer (they bring
# their own mm_cpu_id: one CPU id per thread).
TSAN_TESTS := $(patsubst tests/host/%.c,$(BUILD)/tests/%,$(wildcard tests/host/tsan_*.c))
all: $(TSAN_TESTS)
$(BUILD)/tests/tsan_%: tests/host/tsan_%.c $(HOST_MM_SRCS) $(wildcard mm/*.h mm/include/strata/*.h tests/host/*.h)
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@  (ThreadSanitizer)"
	$(Q)$(HOST_CC) $(HOST_CFLAGS) -O1 -fsanitize=thread -o $@ $< $(HOST_MM_SRCS) -lpthread
else
# ------------------------------------------------------------- kernel build
include arch/$(ARCH)/arch.mk

# Compiler flags common to everything built for the kernel.  No include
# path for the C library here: mm/ and kernel/ differ (below).
KCFLAGS_COMMON := -std=gnu11 -O2 -g -ffreestanding -fno-stack-protector -fno-pic \
	-fno-omit-frame-pointer -fno-common \
	$(WARN) -MMD -MP $(ARCH_CFLAGS) $(ARCH_CFLAGS_$(TOOLCHAIN)) $(FAULT_CFLAGS) \
	-Ikernel/include -Ilib/include -Iarch/$(ARCH)
CC_INCLUDE := $(shell $(KCC) $(ARCH_CFLAGS) -print-file-name=include)
# A cross gcc without a target libc (riscv64-unknown-elf-gcc) keeps its
# <limits.h> in include-fixed/, which -nostdinc drops too: add it back.
CC_INCLUDE_FIXED := $(shell $(KCC) $(ARCH_CFLAGS) -print-file-name=include-fixed)
CC_ISYSTEM := -isystem $(CC_INCLUDE) $(if $(wildcard $(CC_INCLUDE)/limits.h),,\
	$(if $(wildcard $(CC_INCLUDE_FIXED)/limits.h),-isystem $(CC_INCLUDE_FIXED)))

# mm/ (libstrata.a) and the porting proof see only the compiler's
# freestanding headers: strata is what the C library links against, so it
# must not depend on the C library's headers.
KCFLAGS_BASE := $(KCFLAGS_COMMON) -nostdinc $(CC_ISYSTEM)
MM_CFLAGS := $(KCFLAGS_BASE) $(MM_INC) -fstack-usage

# kernel/, arch/, lib/, tests/kernel/ use newlib (scripts/build-newlib).
# newlib's headers come BEFORE the compiler's: with the compiler's first,
# <stdint.h>/<limits.h> are the freestanding ones and newlib's <inttypes.h>
# loses PRId64.  -D_GNU_SOURCE for asprintf, open_memstream, memalign.
# clang kernels use the gcc-built newlib (same ABI, see lib/newlib/README.md).
NEWLIB := build/newlib/$(ARCH)
KCFLAGS := $(KCFLAGS_COMMON) -nostdinc -isystem $(NEWLIB)/include \
	$(CC_ISYSTEM) -D_GNU_SOURCE $(MM_INC)
KASFLAGS := $(KCFLAGS) -D__ASSEMBLY__

# Link: strata and newlib in one group (libc.a calls malloc/free/realloc,
# which strata's mm/malloc_std.c provides), then libgcc where the arch
# needs it (KLIBS, arch.mk: aarch64's and riscv64's 128-bit long double
# helpers).
NEWLIB_LIBS = -L$(NEWLIB)/lib --start-group $(1) -lm -lc --end-group $(KLIBS)

MM_SRCS     := $(wildcard mm/*.c)
KERNEL_SRCS := $(wildcard arch/$(ARCH)/*.c arch/$(ARCH)/*.S kernel/*.c lib/*.c \
	lib/newlib/*.c tests/kernel/*.c)

MM_OBJS     := $(patsubst %,$(BUILD)/%.o,$(MM_SRCS))
KERNEL_OBJS := $(patsubst %,$(BUILD)/%.o,$(KERNEL_SRCS))
KERNEL      := $(BUILD)/kernel.elf
MINIKERNEL  := $(BUILD)/minikernel.elf
LIBSTRATA   := $(BUILD)/libstrata.a

all: $(KERNEL) $(LIBSTRATA) $(MINIKERNEL)
lib: $(LIBSTRATA)

$(BUILD)/%.c.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(KCC) $(KCFLAGS) -c $< -o $@

# mm/ without newlib's headers (see MM_CFLAGS).  The kernel's own
# libstrata.a inlines the CPU and interrupt hooks into the fast paths
# (arch/$(ARCH)/mm_inline.h, strata/platform.h); the prefixed archive of
# the porting proof keeps them out of line, as a port starts.
MM_PLATFORM := -DMM_PLATFORM_INLINE='"mm_inline.h"'
$(MM_OBJS): $(BUILD)/mm/%.c.o: mm/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(KCC) $(MM_CFLAGS) $(MM_PLATFORM) -c $< -o $@

# newlib is built (or found up to date, 0.1 s) before any kernel object.
# The "up to date" line is dropped so a quiet build stays quiet; a real
# build's progress lines and a failure's log tail still show.
.PHONY: newlib
newlib: SHELL := /bin/bash
newlib: .SHELLFLAGS := -o pipefail -c
newlib: deps
	$(Q)scripts/build-newlib $(ARCH) | { grep -v ' up to date$$' || true; }
$(KERNEL_OBJS): | newlib

$(BUILD)/%.S.o: %.S
	@mkdir -p $(dir $@)
	@echo "  AS      $<"
	$(Q)$(KCC) $(KASFLAGS) -c $< -o $@

$(LIBSTRATA): $(MM_OBJS)
	@echo "  AR      $@"
	$(Q)rm -f $@ && $(KAR) rcs $@ $^

# The same archive with every public name prefixed (strata/names.h):
# kfree is strata_kfree there.  The minikernel links this one.
PREFIXED_OBJS := $(patsubst %,$(BUILD)/prefixed/%.o,$(MM_SRCS))
PREFIXED_LIB  := $(BUILD)/prefixed/libstrata.a
$(PREFIXED_OBJS): $(BUILD)/prefixed/mm/%.c.o: mm/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<  (STRATA_PREFIX=strata_)"
	$(Q)$(KCC) $(MM_CFLAGS) -DSTRATA_PREFIX=strata_ -c $< -o $@
$(PREFIXED_LIB): $(PREFIXED_OBJS)
	@echo "  AR      $@"
	$(Q)rm -f $@ && $(KAR) rcs $@ $^

$(KERNEL): $(KERNEL_OBJS) $(LIBSTRATA) arch/$(ARCH)/linker.ld
	@echo "  LD      $@"
	$(Q)$(KLD) $(ARCH_LDFLAGS) -T arch/$(ARCH)/linker.ld -o $@ \
		$(KERNEL_OBJS) $(call NEWLIB_LIBS,$(LIBSTRATA))

run: deps $(KERNEL)
	@# the console goes to the terminal and to $(BUILD)/run.log; the demo's
	@# heap dump in it becomes build/heap.svg (aarch64: build/heap-aarch64.svg);
	@# the exit status stays qemu-run's (POSIX sh has no pipefail: via a file)
	@{ scripts/qemu-run --arch $(ARCH) --kernel $(KERNEL) --mem $(MEM) --smp $(SMP) -- $(KARGS); \
	  echo $$? >$(BUILD)/run.rc; } | tee $(BUILD)/run.log; \
	rc=$$(cat $(BUILD)/run.rc); \
	svg=build/$(if $(filter x86_64,$(ARCH)),heap,heap-$(ARCH)).svg; \
	if grep -q 'strata-heap v1' $(BUILD)/run.log; then \
		scripts/heapviz $(BUILD)/run.log -o $$svg --title "strata heap ($(ARCH), $(MEM))" || rc=1; \
	else echo "run: no heap dump in $(BUILD)/run.log (the demo dumps; test= runs do not)"; fi; \
	exit $$rc

debug: deps $(KERNEL)
	scripts/qemu-run --arch $(ARCH) --kernel $(KERNEL) --mem $(MEM) --smp $(SMP) --debug -- $(KARGS)

# The porting proof: a second, tiny kernel built against the *installed*
# headers and libstrata.a (tests/porting/minikernel.c), reusing only the
# boot stub and console of this repository.  Its link map says which
# objects of libstrata.a it pulled in (scripts/check-minikernel).  It has a
# kfree of its own, so it links the prefixed archive (strata_kfree, ...).
PORT_PREFIX := $(BUILD)/prefix
# The boot stub and console are compiled again with the prefix (they call
# pfa_alloc, kmalloc: strata_pfa_alloc, strata_kmalloc in this kernel).
MINI_OBJS := $(patsubst $(BUILD)/%,$(BUILD)/mini/%,$(filter-out $(BUILD)/kernel/main.c.o \
	$(BUILD)/kernel/mm_glue.c.o $(BUILD)/kernel/demo.c.o $(BUILD)/tests/%,$(KERNEL_OBJS)))
$(MINI_OBJS): | newlib
$(BUILD)/mini/%.c.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<  (STRATA_PREFIX=strata_)"
	$(Q)$(KCC) $(KCFLAGS) -DSTRATA_PREFIX=strata_ -c $< -o $@
$(BUILD)/mini/%.S.o: %.S
	@mkdir -p $(dir $@)
	@echo "  AS      $<  (STRATA_PREFIX=strata_)"
	$(Q)$(KCC) $(KASFLAGS) -DSTRATA_PREFIX=strata_ -c $< -o $@

minikernel: $(MINIKERNEL)
$(PORT_PREFIX)/lib/libstrata.a: $(PREFIXED_LIB) $(wildcard mm/include/strata/*.h)
	$(Q)$(MAKE) -s install PREFIX=$(abspath $(PORT_PREFIX)) INSTALL_LIB=$(PREFIXED_LIB)
$(BUILD)/minikernel.o: tests/porting/minikernel.c $(PORT_PREFIX)/lib/libstrata.a
	@echo "  CC      $<  (installed headers only, STRATA_PREFIX=strata_)"
	$(Q)$(KCC) $(KCFLAGS_BASE) -DSTRATA_PREFIX=strata_ -I$(PORT_PREFIX)/include -c $< -o $@
$(MINIKERNEL): $(BUILD)/minikernel.o $(MINI_OBJS) arch/$(ARCH)/linker.ld
	@echo "  LD      $@"
	$(Q)$(KLD) $(ARCH_LDFLAGS) -T arch/$(ARCH)/linker.ld -o $@ -Map=$(BUILD)/minikernel.map \
		$(BUILD)/minikernel.o $(MINI_OBJS) -L$(PORT_PREFIX)/lib \
		$(call NEWLIB_LIBS,-lstrata)

# INSTALL_LIB=$(BUILD)/prefixed/libstrata.a installs the prefixed archive
INSTALL_LIB ?= $(LIBSTRATA)
install: $(INSTALL_LIB)
	install -d $(PREFIX)/lib $(PREFIX)/include/strata
	install -m 644 $(INSTALL_LIB) $(PREFIX)/lib/libstrata.a
	install -m 644 mm/include/strata/*.h $(PREFIX)/include/strata/

-include $(KERNEL_OBJS:.o=.d) $(MM_OBJS:.o=.d) $(PREFIXED_OBJS:.o=.d) $(MINI_OBJS:.o=.d)

# Teaching labs (labs/, scripts/lab): a kernel whose libstrata.a takes the
# student's copy of a layer's file from LAB_WORK (labs/work/N/) instead of
# mm/'s, plus the lab's own suites (LAB_DIR/grade*.c) and the student's
# other files (a planted-bug module).  Every other object is the normal
# build's; the lab's objects and kernel go to build/labs/N/<arch>/.
ifneq ($(LAB_WORK),)
LAB_BUILD   ?= build/labs/$(notdir $(LAB_WORK))/$(ARCH)
LAB_MM_SRCS := $(filter $(addprefix $(LAB_WORK)/,$(notdir $(MM_SRCS))),$(wildcard $(LAB_WORK)/*.c))
LAB_K_SRCS  := $(filter-out $(LAB_MM_SRCS),$(wildcard $(LAB_WORK)/*.c)) $(wildcard $(LAB_DIR)/grade*.c)
LAB_MM_OBJS := $(patsubst %,$(LAB_BUILD)/%.o,$(LAB_MM_SRCS))
LAB_K_OBJS  := $(patsubst %,$(LAB_BUILD)/%.o,$(LAB_K_SRCS))
LAB_LIB_OBJS := $(filter-out $(patsubst %,$(BUILD)/mm/%.o,$(notdir $(LAB_MM_SRCS))),$(MM_OBJS)) \
	$(LAB_MM_OBJS)
.PHONY: lab-kernel
lab-kernel: $(LAB_BUILD)/kernel.elf
# a stub left by lab-start may leave a static helper unused: not an error
$(LAB_MM_OBJS): $(LAB_BUILD)/%.c.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<  (lab: instead of mm/$(notdir $<))"
	$(Q)$(KCC) $(MM_CFLAGS) -iquote mm -Wno-unused-function -Wno-unused-variable \
		-Wno-unused-but-set-variable -c $< -o $@
$(LAB_K_OBJS): $(LAB_BUILD)/%.c.o: %.c | newlib
	@mkdir -p $(dir $@)
	@echo "  CC      $<  (lab)"
	$(Q)$(KCC) $(KCFLAGS) -iquote $(LAB_WORK) -iquote $(LAB_DIR) -c $< -o $@
$(LAB_BUILD)/libstrata.a: $(LAB_LIB_OBJS)
	$(Q)rm -f $@ && $(KAR) rcs $@ $^
$(LAB_BUILD)/kernel.elf: $(KERNEL_OBJS) $(LAB_K_OBJS) $(LAB_BUILD)/libstrata.a arch/$(ARCH)/linker.ld
	@echo "  LD      $@"
	$(Q)$(KLD) $(ARCH_LDFLAGS) -T arch/$(ARCH)/linker.ld -o $@ \
		$(KERNEL_OBJS) $(LAB_K_OBJS) $(call NEWLIB_LIBS,$(LAB_BUILD)/libstrata.a)
-include $(LAB_MM_OBJS:.o=.d) $(LAB_K_OBJS:.o=.d)
endif

endif

# ------------------------------------------------------------ whole project
deps:
	@scripts/deps.sh

# Everything: host unit tests, kernels for all three arches and both toolchains,
# QEMU boots.  scripts/test-all prints the closing "N passed, N failed".
test: deps
	@scripts/test-all

test-host: deps
	@scripts/test-all --host-only

test-qemu: deps
	@scripts/test-all --qemu-only

bench: deps
	@scripts/bench-all

fuzz: deps
	@scripts/fuzz $(FUZZ_TIME)

# Hours, not minutes: smp-stress to 10^8 objects per arch, TSan, the fuzzer
# and real programs for SOAK_TIME seconds each (scripts/soak).
soak: deps
	@SOAK_TIME=$(or $(SOAK_TIME),3600) SOAK_OPS=$(or $(SOAK_OPS),100000000) scripts/soak

# Teaching labs (labs/README.md): LAB=2 or LAB=buddies or LAB=2-buddies.
#   make lab-start LAB=2    labs/work/2/: the layer's file, exercise bodies removed
#   make grade LAB=2        build, boot on every arch (GRADE_ARCH=x86_64: one),
#                           score per test and a total
#   make lab-reference LAB=2  labs/work/2/ gets strata's own code back
.PHONY: lab-start grade lab-reference
lab-start:
	@scripts/lab start $(LAB) $(if $(FORCE),--force)
grade: deps
	@scripts/lab grade $(LAB) $(if $(GRADE_ARCH),--arch $(GRADE_ARCH))
lab-reference:
	@scripts/lab reference $(LAB)

clean:
	rm -rf build
