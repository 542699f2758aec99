/*
 * demo.c - what `make run` shows when no test= is given.
 *
 * A small tour of strata's layers on the live machine: allocate a few
 * thousand objects of kernel-like sizes (most small, some page runs),
 * print the object allocator's table while they are live, dump the heap
 * (strata/heapdump.h; `make run` turns the dump into build/heap.svg with
 * scripts/heapviz), free them all, give the spare arena back, and show
 * that the page-frame allocator has every page it started with.
 */
#include <kernel/console.h>
#include <kernel/boot.h>
#include <kernel/panic.h>
#include <stdio.h>
#include <strata/heapdump.h>
#include <strata/kmalloc.h>
#include <strata/kmem_cache.h>
#include <strata/pfa.h>

#define DEMO_OBJECTS 4000
#define DEMO_TASKS   300

static void *objs[DEMO_OBJECTS];
static void *tasks[DEMO_TASKS], *inodes[DEMO_TASKS];

/* A typed cache with a constructor, as a kernel's task structs. */
struct demo_task {
	unsigned magic, pid;
	char name[24];
	void *stack;
	unsigned long regs[56];
};
static void task_ctor(void *p)
{
	struct demo_task *t = p;
	t->magic = 0x7a5c;
	t->pid = 0;
	t->stack = NULL;
}

static size_t dump_bytes;

/* console_write, counting: the dump's size for the line after it */
static void dump_out(const char *s, size_t n)
{
	dump_bytes += n;
	console_write(s, n);
}

static size_t demo_size(unsigned i)
{
	/* mostly small (16..512), every 16th a larger buffer, every 200th
	 * a multi-page run: roughly a kernel's mix */
	if (i % 200 == 199)
		return 3 * 4096 + i;
	if (i % 16 == 15)
		return 600 + (i * 37) % 1500;
	return 16 + (i * 7919) % 497;
}

/* The story make run tells, level by level (labs/README.md: one lab
 * each): CPython's levels as strata's layers, first. */
static const char *const levels[][3] = {
	{ "+3 object-specific", "kmem_cache (slab.c), per-CPU magazines (percpu.c)", "lab 8" },
	{ "+2 object allocator", "size classes, pools, arenas (pool.c, arena.c)", "labs 3-5" },
	{ "+1 raw allocator", "runs of whole pages, n > 2048 (large.c)", "-" },
	{ " 0 malloc / the OS", "page frames, buddy system (pfa.c)", "lab 2" },
	{ "beside them", "debug mode (debug.c), tracemalloc (trace.c)", "labs 6, 7" },
};

void demo_run(const struct boot_info *bi)
{
	(void)bi;
	struct pfa_stats before, during, after;

	printf("\n-- levels (labs/1-levels) --\n");
	printf("  %-20s %-52s %s\n", "CPython's levels", "strata's layers (mm/LAYERS)", "lab");
	for (unsigned i = 0; i < sizeof levels / sizeof levels[0]; i++)
		printf("  %-20s %-52s %s\n", levels[i][0], levels[i][1], levels[i][2]);
	pfa_get_stats(&before);
	printf("\n-- demo: %d allocations with kmalloc (level +2: labs/3-pools, labs/4-classes) --\n",
	       DEMO_OBJECTS);
	for (unsigned i = 0; i < DEMO_OBJECTS; i++) {
		objs[i] = kmalloc(demo_size(i), 0);
		if (!objs[i])
			panic("demo: kmalloc(%zu) failed", demo_size(i));
		*(unsigned *)objs[i] = i;
	}
	struct kmem_cache *task_cache = kmem_cache_create("task", sizeof(struct demo_task), 0,
							  KMEM_HWCACHE_ALIGN | KMEM_PANIC, task_ctor);
	struct kmem_cache *inode_cache = kmem_cache_create("inode", 200, 0, KMEM_PANIC, NULL);
	if (!task_cache || !inode_cache)
		panic("demo: kmem_cache_create failed");
	for (unsigned i = 0; i < DEMO_TASKS; i++) {
		struct demo_task *t = kmem_cache_alloc(task_cache, 0);
		if (t->magic != 0x7a5c)
			panic("demo: task %p not constructed", (void *)t);
		t->pid = i + 1;
		tasks[i] = t;
		inodes[i] = kmem_cache_alloc(inode_cache, KM_ZERO);
	}
	/* one task back to this CPU's magazine of the cache, whatever the
	 * fill size left there: tests/gdb/run looks at entry 0 of it */
	kmem_cache_free(task_cache, kmem_cache_alloc(task_cache, 0));
	/* a few addresses for the debugger: tests/gdb/run stops the demo at
	 * mm_heap_dump and asks `strata whatis` about each one */
	void *live = kmalloc(100, 0);               /* gdb: the live block's site */
	void *freed = kmalloc(100, 0);
	enum { BIG = KMALLOC_SMALL_MAX + 6 * 4096 - 100 };   /* above the classes */
	void *big = kmalloc(BIG, 0);               /* 14 pages: blocks of 8 + 4 + 2 */
	phys_addr_t page = pfa_alloc(0, 0);
	if (!live || !freed || !big || !page)
		panic("demo: out of memory");
	kfree(freed);          /* to this CPU's magazine (mm.debug=Q: the quarantine) */
	pfa_get_stats(&during);
	kmalloc_print_stats(console_write);
	printf("\n-- object caches (kmem_cache, level +3), %d tasks and inodes live --\n", DEMO_TASKS);
	kmem_cache_print_slabinfo(console_write);
	printf("\n-- addresses for the debugger (strata whatis: tests/gdb/run) --\n");
	printf("  live block   %p  kmalloc(100), usable size %zu\n", live,
	       kmalloc_usable_size(live));
	printf("  freed block  %p  kmalloc(100), then kfree\n", freed);
	printf("  task object  %p  task %u of cache \"task\", size %zu\n", tasks[7], 7u,
	       sizeof(struct demo_task));
	printf("  large run    %p  kmalloc(%d), usable size %zu\n", big, (int)BIG,
	       kmalloc_usable_size(big));
	printf("  page         0x%llx  pfa_alloc(order 0), physical\n", (unsigned long long)page);
	printf("\npfa free pages: %llu before, %llu with the objects live\n",
		(unsigned long long)before.free_pages,
		(unsigned long long)during.free_pages);

	/* the heap picture, while the objects are live: between its
	 * marker lines, for scripts/heapviz */
	printf("\n-- heap dump (scripts/heapviz draws it) --\n");
	fflush(stdout);
	mm_heap_dump(dump_out);
	printf("heap dump: %zu bytes\n", dump_bytes);

	printf("\n-- giving memory back (labs/5-release) --\n");
	for (unsigned i = 0; i < DEMO_OBJECTS; i++) {
		if (*(unsigned *)objs[i] != i)
			panic("demo: object %u at %p was overwritten", i, objs[i]);
		kfree(objs[i]);
	}
	for (unsigned i = 0; i < DEMO_TASKS; i++) {
		kmem_cache_free(task_cache, tasks[i]);
		kmem_cache_free(inode_cache, inodes[i]);
	}
	kfree(live);
	kfree(big);
	pfa_free(page, 0);
	if (kmem_cache_destroy(task_cache) || kmem_cache_destroy(inode_cache))
		panic("demo: caches still had objects");
	uint64_t trimmed = kmalloc_trim();
	pfa_get_stats(&after);
	printf("all freed; kmalloc_trim() gave back %llu pages; pfa free pages %llu "
		"(%s the %llu before)\n", (unsigned long long)trimmed,
		(unsigned long long)after.free_pages,
		after.free_pages == before.free_pages ? "equal to" : "NOT equal to",
		(unsigned long long)before.free_pages);
	printf("\n-- page-frame allocator (level 0: labs/2-buddies) --\n");
	pfa_print_stats(console_write);
	printf("demo done\n");
}
