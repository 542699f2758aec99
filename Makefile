# strata - one entry point for building, booting, testing and benchmarking.
#
#   make run                       build the x86_64 kernel and boot it in QEMU
#   make ARCH=aarch64 run          the same on aarch64
#   make test                      host tests, then QEMU boots of both arches
#   make debug                     boot halted, with a gdb script (gdb-multiarch)
#   make ARCH=host                 host build: unit tests and libstrata
#   make lib                       build/<arch>/libstrata.a from mm/ alone
#
# Variables: ARCH=x86_64|aarch64|host  TOOLCHAIN=gcc|clang
#            KARGS="test=all seed=7"   MEM=512M   SMP=1   V=1 (echo commands)

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

ifneq ($(V),1)
Q := @
endif

.DEFAULT_GOAL := all
.PHONY: all run test test-host test-qemu debug clean lib install deps bench soak minikernel

WARN := -Wall -Wextra -Werror -Wno-unused-parameter
MM_INC := -Imm/include

# ---------------------------------------------------------------- host build
ifeq ($(ARCH),host)
include arch/host/arch.mk
else
# ------------------------------------------------------------- kernel build
include arch/$(ARCH)/arch.mk

KCFLAGS_BASE := -std=gnu11 -O2 -g -ffreestanding -fno-stack-protector -fno-pic \
	-fno-omit-frame-pointer -fno-common -nostdinc \
	-isystem $(shell $(KCC) $(ARCH_CFLAGS) -print-file-name=include) \
	$(WARN) -MMD -MP $(ARCH_CFLAGS) $(ARCH_CFLAGS_$(TOOLCHAIN)) \
	-Ikernel/include -Ilib/include -Iarch/$(ARCH)
KCFLAGS := $(KCFLAGS_BASE) $(MM_INC)
KASFLAGS := $(KCFLAGS) -D__ASSEMBLY__

MM_SRCS     := $(wildcard mm/*.c)
KERNEL_SRCS := $(wildcard arch/$(ARCH)/*.c arch/$(ARCH)/*.S kernel/*.c lib/*.c tests/kernel/*.c)

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

$(BUILD)/%.S.o: %.S
	@mkdir -p $(dir $@)
	@echo "  AS      $<"
	$(Q)$(KCC) $(KASFLAGS) -c $< -o $@

$(LIBSTRATA): $(MM_OBJS)
	@echo "  AR      $@"
	$(Q)rm -f $@ && $(KAR) rcs $@ $^

$(KERNEL): $(KERNEL_OBJS) $(LIBSTRATA) arch/$(ARCH)/linker.ld
	@echo "  LD      $@"
	$(Q)$(KLD) $(ARCH_LDFLAGS) -T arch/$(ARCH)/linker.ld -o $@ \
		$(KERNEL_OBJS) $(LIBSTRATA) $(KLIBS)

run: deps $(KERNEL)
	scripts/qemu-run --arch $(ARCH) --kernel $(KERNEL) --mem $(MEM) --smp $(SMP) -- $(KARGS)

debug: deps $(KERNEL)
	scripts/qemu-run --arch $(ARCH) --kernel $(KERNEL) --mem $(MEM) --smp $(SMP) --debug -- $(KARGS)

# The porting proof: a second, tiny kernel built against the *installed*
# headers and libstrata.a (tests/porting/minikernel.c), reusing only the
# boot stub and console of this repository.
PORT_PREFIX := $(BUILD)/prefix
MINI_OBJS := $(filter-out $(BUILD)/kernel/main.c.o $(BUILD)/kernel/mm_glue.c.o \
	$(BUILD)/kernel/demo.c.o $(BUILD)/tests/%,$(KERNEL_OBJS))

minikernel: $(MINIKERNEL)
$(PORT_PREFIX)/lib/libstrata.a: $(LIBSTRATA) $(wildcard mm/include/strata/*.h)
	$(Q)$(MAKE) -s install PREFIX=$(abspath $(PORT_PREFIX))
$(BUILD)/minikernel.o: tests/porting/minikernel.c $(PORT_PREFIX)/lib/libstrata.a
	@echo "  CC      $<  (installed headers only)"
	$(Q)$(KCC) $(KCFLAGS_BASE) -I$(PORT_PREFIX)/include -c $< -o $@
$(MINIKERNEL): $(BUILD)/minikernel.o $(MINI_OBJS) arch/$(ARCH)/linker.ld
	@echo "  LD      $@"
	$(Q)$(KLD) $(ARCH_LDFLAGS) -T arch/$(ARCH)/linker.ld -o $@ \
		$(BUILD)/minikernel.o $(MINI_OBJS) -L$(PORT_PREFIX)/lib -lstrata $(KLIBS)

install: $(LIBSTRATA)
	install -d $(PREFIX)/lib $(PREFIX)/include/strata
	install -m 644 $(LIBSTRATA) $(PREFIX)/lib/
	install -m 644 mm/include/strata/*.h $(PREFIX)/include/strata/

-include $(KERNEL_OBJS:.o=.d) $(MM_OBJS:.o=.d)
endif

# ------------------------------------------------------------ whole project
deps:
	@scripts/deps.sh

# Everything: host unit tests, kernels for both arches and both toolchains,
# QEMU boots.  scripts/test-all prints the closing "N passed, N failed".
test: deps
	@scripts/test-all

test-host: deps
	@scripts/test-all --host-only

test-qemu: deps
	@scripts/test-all --qemu-only

bench: deps
	@scripts/bench-all

clean:
	rm -rf build
