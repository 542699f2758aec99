# Host build (ARCH=host): unit tests with sanitizers, benchmarks, libstrata.
# scripts/test-all drives the unit tests; this file builds the pieces.
#
#   build/host/tests/test_*      tests/host/test_*.c + mm/ + platform.c, ASan/UBSan
#   build/host/libstrata.so      mm/ + arch/host/libstrata.c, -O2 -fPIC, only
#                                the malloc names exported (LD_PRELOAD it)
#   build/host/libstrata-faults.so  the same with -DMM_FAULT_INJECT=1
#                                (strata/fault.h), for tests/host/lib_faults.c
#   build/host/tests/lib_*       tests/host/lib_*.c (and lib_*.cc, C++: the
#                                operators): plain programs meant to run
#                                under LD_PRELOAD=build/host/libstrata.so
HOST_CC     ?= $(if $(filter clang,$(TOOLCHAIN)),clang,gcc)
# -DMM_LOCKDEP=1: the unit tests are strata's debug build, every lock taken
# out of the order of mm/lock_order.h is reported (mm/lockdep.c).
HOST_CFLAGS := -std=gnu11 -g -O1 -fno-omit-frame-pointer $(WARN) -MMD -MP -DMM_LOCKDEP=1 \
	$(MM_INC) -Ilib/include -Ikernel/include -Iarch/host -Itests/host -Itests/common
SAN         := -fsanitize=address,undefined -fno-sanitize-recover=undefined

HOST_MM_SRCS := $(filter-out $(wildcard mm/*std*.c),$(wildcard mm/*.c)) \
	$(wildcard lib/fdt.c) arch/host/platform.c
HOST_TESTS   := $(patsubst tests/host/%.c,$(BUILD)/tests/%,$(wildcard tests/host/test_*.c))

# --- libstrata.so ---------------------------------------------------------
# PFA_MAX_ORDER=20: one PFA block is 4 GiB, so malloc() serves up to 4 GiB.
# PFA_LAZY_INIT: the reservation is fresh zero pages, so the PFA writes the
# descriptors of a 4 MiB block only when it first hands the block out.
# LIB_EXTRA_DEFS: more -D flags for a variant build of the same library
# (scripts/bench-sample builds one with -DMM_SAMPLING=0).
LIB_DEFS    := -DPFA_MAX_ORDER=20 -DPFA_LAZY_INIT=1 -DKM_LARGE_PRESSURE_RUNS=0 -DMM_PLATFORM_INLINE='"host_cpu.h"' \
	$(LIB_EXTRA_DEFS)
LIB_CFLAGS  := -std=gnu11 -O2 -g -fPIC -fvisibility=hidden -ftls-model=initial-exec \
	-fno-plt $(WARN) -MMD -MP $(MM_INC) -Iarch/host $(LIB_DEFS)
LIB_NOBUILTIN := -fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc \
	-fno-builtin-free
LIB_MM_SRCS := $(filter-out $(wildcard mm/*std*.c),$(wildcard mm/*.c))
LIB_OBJS    := $(patsubst %.c,$(BUILD)/lib/%.o,$(LIB_MM_SRCS) arch/host/platform.c \
	arch/host/libstrata.c)
LIBSTRATA_SO := $(BUILD)/libstrata.so
LIB_TESTS   := $(patsubst tests/host/%.c,$(BUILD)/tests/%,$(wildcard tests/host/lib_*.c)) \
	$(patsubst tests/host/%.cc,$(BUILD)/tests/%,$(wildcard tests/host/lib_*.cc))
HOST_CXX    ?= $(if $(filter clang,$(TOOLCHAIN)),clang++,g++)

# The fault-injection build of the .so (strata/fault.h): its own objects.
LIBSTRATA_FAULTS_SO := $(BUILD)/libstrata-faults.so
LIB_FAULT_OBJS := $(patsubst $(BUILD)/lib/%,$(BUILD)/lib-faults/%,$(LIB_OBJS))

all: $(HOST_TESTS) $(LIBSTRATA_SO) $(LIBSTRATA_FAULTS_SO) $(LIB_TESTS)
lib: $(LIBSTRATA_SO)

# Tests of one layer link that layer and the ones below it only
# (TEST_SRCS_<test>; mm/LAYERS says what is below what); the others link
# all of mm/.
MM_BASE_SRCS := mm/format.c mm/report.c mm/lockdep.c mm/mm.c mm/platform_default.c \
	arch/host/platform.c
TEST_SRCS_test_format   := mm/format.c mm/platform_default.c arch/host/platform.c
TEST_SRCS_test_magazine := mm/magazine.c $(MM_BASE_SRCS)
# its fork points include the depot lock's release (lockdep's hook)
$(BUILD)/tests/test_magazine: HOST_CFLAGS += -Wl,--wrap=mm_lockdep_release
# the kernel's boot_info lists too: the firmware map's path into the PFA
TEST_SRCS_test_memmap   := $(HOST_MM_SRCS) kernel/bootinfo.c
test_srcs = $(or $(TEST_SRCS_test_$(1)),$(HOST_MM_SRCS))

.SECONDEXPANSION:
$(BUILD)/tests/test_%: tests/host/test_%.c $$(call test_srcs,$$*) $(wildcard mm/*.h mm/include/strata/*.h tests/host/*.h tests/common/*.h lib/include/*.h)
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@"
	$(Q)$(HOST_CC) $(HOST_CFLAGS) $(SAN) -o $@ $< $(call test_srcs,$*) -lm

$(BUILD)/lib/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(HOST_CC) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/lib/arch/host/libstrata.o: LIB_CFLAGS += $(LIB_NOBUILTIN)
$(BUILD)/lib/arch/host/libstrata.o: mm/malloc_std.c arch/host/cxx_operators.c

$(LIBSTRATA_SO): $(LIB_OBJS)
	@echo "  LD      $@"
	$(Q)$(HOST_CC) -shared -O2 -Wl,-z,now -Wl,-z,nodelete -o $@ $^ -lpthread

$(BUILD)/lib-faults/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@  (MM_FAULT_INJECT=1)"
	$(Q)$(HOST_CC) $(LIB_CFLAGS) -DMM_FAULT_INJECT=1 -c $< -o $@

$(BUILD)/lib-faults/arch/host/libstrata.o: LIB_CFLAGS += $(LIB_NOBUILTIN)
$(BUILD)/lib-faults/arch/host/libstrata.o: mm/malloc_std.c

$(LIBSTRATA_FAULTS_SO): $(LIB_FAULT_OBJS)
	@echo "  LD      $@"
	$(Q)$(HOST_CC) -shared -O2 -Wl,-z,now -Wl,-z,nodelete -o $@ $^ -lpthread

# tests/bench/sample_ab.c (scripts/bench-sample): three copies of mm/ in
# one program, built with the .so's flags: s_* the default, n_* without the
# sampling countdown (-DMM_SAMPLING=0), a_* the default again (the control);
# strata/names.h renames each copy.
AB_S_OBJS := $(patsubst %.c,$(BUILD)/ab/s/%.o,$(LIB_MM_SRCS))
AB_N_OBJS := $(patsubst %.c,$(BUILD)/ab/n/%.o,$(LIB_MM_SRCS))
AB_A_OBJS := $(patsubst %.c,$(BUILD)/ab/a/%.o,$(LIB_MM_SRCS))
SAMPLE_AB := $(BUILD)/bench/sample_ab
$(BUILD)/ab/s/%.o: %.c
	@mkdir -p $(dir $@)
	$(Q)$(HOST_CC) $(LIB_CFLAGS) -DSTRATA_PREFIX=s_ -c $< -o $@
$(BUILD)/ab/n/%.o: %.c
	@mkdir -p $(dir $@)
	$(Q)$(HOST_CC) $(LIB_CFLAGS) -DMM_SAMPLING=0 -DSTRATA_PREFIX=n_ -c $< -o $@
$(BUILD)/ab/a/%.o: %.c
	@mkdir -p $(dir $@)
	$(Q)$(HOST_CC) $(LIB_CFLAGS) -DSTRATA_PREFIX=a_ -c $< -o $@
$(SAMPLE_AB): tests/bench/sample_ab.c $(AB_S_OBJS) $(AB_N_OBJS) $(AB_A_OBJS) \
		$(BUILD)/lib/arch/host/platform.o
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(HOST_CC) -std=gnu11 -O2 $(WARN) $(MM_INC) -Iarch/host -o $@ $^
sample-ab: $(SAMPLE_AB)

# Programs run under LD_PRELOAD: no sanitizers (they bring their own malloc).
$(BUILD)/tests/lib_%: tests/host/lib_%.c $(wildcard tests/host/*.h mm/include/strata/*.h)
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@"
	$(Q)$(HOST_CC) -std=gnu11 -O1 -g $(WARN) -fno-builtin $(MM_INC) -Itests/host -o $@ $< -lpthread -ldl

# C++ (operator new/delete): sized deallocation on, as C++14 and later have it
$(BUILD)/tests/lib_%: tests/host/lib_%.cc $(wildcard tests/host/*.h mm/include/strata/*.h)
	@mkdir -p $(dir $@)
	@echo "  HOSTCXX $@"
	$(Q)$(HOST_CXX) -std=gnu++17 -O1 -g -Wall -Wextra -fsized-deallocation \
		-D_Static_assert=static_assert $(MM_INC) -Itests/host \
		-o $@ $< -lpthread -ldl

-include $(LIB_OBJS:.o=.d) $(LIB_FAULT_OBJS:.o=.d)
-include $(AB_S_OBJS:.o=.d) $(AB_N_OBJS:.o=.d) $(AB_A_OBJS:.o=.d)

# fault injection compiled in (strata/fault.h)
$(BUILD)/tests/test_faults: HOST_CFLAGS += -DMM_FAULT_INJECT=1
# the worst-case workload's choices under failing calls (tests/bench/wcet.h)
$(BUILD)/tests/test_wcet_seq: HOST_CFLAGS += -DMM_FAULT_INJECT=1
$(BUILD)/tests/test_wcet_seq: tests/bench/wcet.h
$(BUILD)/tests/test_nosample: HOST_CFLAGS += -DMM_SAMPLING=0

# the PFA's fresh mode, with blocks above its 4 MiB lazy granule
$(BUILD)/tests/test_pfa_fresh: HOST_CFLAGS += -DPFA_MAX_ORDER=12
