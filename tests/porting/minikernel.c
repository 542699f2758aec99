/*
 * minikernel.c - the smallest complete port of strata, built against the
 * *installed* headers and libstrata.a only (make install PREFIX=...).
 *
 * It proves the platform contract is all a kernel needs to supply:
 *
 *   1. mm_platform_write() and mm_platform_panic()      (strata/platform.h)
 *   2. the RAM map, handed over once at boot:           (strata/pfa.h)
 *        pfa_setup_begin(direct_map_offset);
 *        pfa_add_region(base, size) ...; pfa_reserve(base, size) ...;
 *        pfa_setup_end();
 *   3. kmalloc_init(), then kmalloc()/kfree() anywhere  (strata/kmalloc.h)
 *   4. memset/memcpy/memmove/memcmp, which gcc and clang require of every
 *      freestanding environment
 *
 * Here the boot stub of this repository's arch/ brings the CPU up and
 * passes the firmware's memory map; a real kernel passes its own.
 *
 * Like many kernels, this one has a kfree of its own (for pages, below),
 * which collides with strata's.  So it is built, with the archive it
 * links, with -DSTRATA_PREFIX=strata_ (strata/names.h): every strata name
 * is strata_* (strata_kmalloc, strata_pfa_alloc, ...), and after the
 * strata headers <strata/names_undef.h> gives the plain names back.
 */
#include <stdint.h>
#include <strata/kmalloc.h>
#include <strata/pfa.h>
#include <strata/platform.h>
#include <strata/names_undef.h>

#include <kernel/arch.h>
#include <kernel/boot.h>
#include <kernel/console.h>

/* ---- 1. the two hooks ---- */
void mm_platform_write(const char *s, size_t n)
{
	console_write(s, n);
}

void mm_platform_panic(const char *msg)
{
	console_printf("minikernel: strata panic: %s\n", msg);
	arch_exit(2);
}

/* ---- this kernel's own page interface: its kfree is not strata's ---- */
static uint64_t direct_map;

static void *kalloc_page(void)
{
	phys_addr_t pa = strata_pfa_alloc(0, 0);
	return pa ? (void *)(uintptr_t)(pa + direct_map) : 0;
}

/* A strict kernel: a page free strata refuses (reported already) stops it. */
void kfree(void *page)
{
	if (strata_pfa_free((phys_addr_t)(uintptr_t)page - direct_map, 0) != 0)
		mm_platform_panic("kfree: bad page free (see the pfa: line above)");
}

static int passed, failed;

static void check(int ok, const char *what)
{
	console_printf("%s %d - minikernel/%s\n", ok ? "ok" : "not ok", passed + failed + 1, what);
	if (ok)
		passed++;
	else
		failed++;
}

void kmain(struct boot_info *bi)
{
	console_printf("\nminikernel: strata linked from an installed libstrata.a\n");

	/* ---- 2. hand over RAM ---- */
	direct_map = bi->direct_map_offset;
	strata_pfa_setup_begin(bi->direct_map_offset);
	for (unsigned i = 0; i < bi->nram; i++)
		strata_pfa_add_region(bi->ram[i].base, bi->ram[i].size);
	for (unsigned i = 0; i < bi->nreserved; i++)
		strata_pfa_reserve(bi->reserved[i].base, bi->reserved[i].size);
	check(strata_pfa_setup_end() == 0, "pfa_setup");

	/* ---- 3. allocate ---- */
	strata_kmalloc_init();
	static struct pfa_stats before, after;  /* static: no big boot-stack locals */
	strata_pfa_get_stats(&before);

	enum { N = 1000 };
	static uint32_t *objs[N];
	int ok = 1;
	for (int i = 0; i < N; i++) {
		size_t size = 8 + (size_t)(i * 37) % 3000;   /* small and large */
		objs[i] = strata_kmalloc(size, 0);
		if (!objs[i]) {
			ok = 0;
			break;
		}
		objs[i][0] = (uint32_t)i;
	}
	check(ok, "kmalloc 1000 objects");
	for (int i = 0; i < N && ok; i++)
		ok = objs[i][0] == (uint32_t)i;
	check(ok, "objects keep their contents");
	for (int i = 0; i < N; i++)
		strata_kfree(objs[i]);
	strata_kmalloc_trim();
	uint32_t *page = kalloc_page();          /* this kernel's own pages */
	check(page != 0, "kalloc_page");
	if (page)
		page[1023] = 7;
	kfree(page);

	/* a refused free says so, once: the report has a new serial, and
	 * after a clear the next legal free leaves no report */
	struct pfa_report r0, r1, r2;
	strata_pfa_last_report(&r0);
	phys_addr_t pa = strata_pfa_alloc(0, 0);
	int first = strata_pfa_free(pa, 0), second = strata_pfa_free(pa, 0);
	strata_pfa_last_report(&r1);
	check(first == 0 && second == -1 && r1.kind == PFA_REPORT_DOUBLE_FREE &&
	      r1.serial == r0.serial + 1, "a double page free is refused and reported once");
	strata_pfa_clear_report();
	kfree(kalloc_page());
	strata_pfa_last_report(&r2);
	check(r2.kind == PFA_REPORT_NONE && r2.serial == r1.serial, "cleared, and legal frees stay clean");
	strata_pfa_get_stats(&after);
	check(after.free_pages == before.free_pages, "every page back in the PFA");
	check(strata_pfa_check() == 0, "pfa_check");

	console_printf("%d passed, %d failed\n", passed, failed);
	arch_exit(failed ? 1 : 0);
}
