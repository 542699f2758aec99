# Host build (ARCH=host): unit tests with sanitizers, benchmarks, libstrata.
# scripts/test-all drives the unit tests; this file builds the pieces.
HOST_CC     ?= $(if $(filter clang,$(TOOLCHAIN)),clang,gcc)
HOST_CFLAGS := -std=gnu11 -g -O1 -fno-omit-frame-pointer $(WARN) -MMD -MP \
	$(MM_INC) -Ilib/include -Ikernel/include -Iarch/host -Itests/host
SAN         := -fsanitize=address,undefined -fno-sanitize-recover=undefined

HOST_MM_SRCS := $(filter-out $(wildcard mm/*std*.c),$(wildcard mm/*.c)) \
	$(wildcard lib/fdt.c arch/host/*.c)
HOST_TESTS   := $(patsubst tests/host/%.c,$(BUILD)/tests/%,$(wildcard tests/host/test_*.c))

all: $(HOST_TESTS)

$(BUILD)/tests/%: tests/host/%.c $(HOST_MM_SRCS) $(wildcard mm/include/strata/*.h tests/host/*.h lib/include/*.h)
	@mkdir -p $(dir $@)
	@echo "  HOSTCC  $@"
	$(Q)$(HOST_CC) $(HOST_CFLAGS) $(SAN) -o $@ $< $(HOST_MM_SRCS) -lm
