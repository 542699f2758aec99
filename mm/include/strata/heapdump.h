/*
 * strata/heapdump.h - the heap as text: every page of RAM by owner, every
 * arena's pools by fullness, every large run, for scripts/heapviz (which
 * draws it as an SVG) or for reading by eye.
 *
 *     mm_heap_dump(console_write);
 *
 * `out` receives the dump in pieces (not necessarily whole lines).  It is
 * called with strata's locks held (the object allocator's, then the
 * PFA's), so it must not allocate from strata or call into it: a console
 * or UART write, or a copy into a buffer, as mm_platform_write().  The
 * dump walks every page descriptor once and every arena header; expect
 * about 1 ms per 100 MiB of RAM plus the cost of writing ~20-60 KiB.
 *
 * Format, version 1
 * =================
 * Line-oriented ASCII.  Words are separated by one space.  Addresses are
 * physical, "0x" hex; everything else is decimal.  `key=value` words may
 * be added in later versions of v1: readers ignore keys they do not know,
 * and lines whose first word they do not know.  The first and the last
 * line are markers, so the dump can be cut out of a console log (a reader
 * strips a trailing '\r'):
 *
 *   strata-heap v1 page=4096 pool=16384 arena=1048576 pools=64 maxorder=10 classes=48 small_max=2048
 *   class 0 16 1020 1016            index, block size, blocks per pool,
 *   class 1 32 510 508                ... and in pool 0 (arena header)
 *   ...
 *   region 0x100000 0x1fee0000      RAM region: base, size in bytes
 *   totals pages=130943 free=129617 reserved=670 meta_bytes=2105344 arenas=4 large_runs=20 large_pages=80 large_req=269380
 *   reserved 0x0 3                  --- memory lines, by address ---
 *   free 0x3000 1 order=0 n=1       kind base pages [key=value ...]
 *   ...                             the pages of consecutive lines are
 *   arena 0x1000000 256             disjoint, ascending; pages not on any
 *   large 0x1100000 4 req=12487     line are not RAM
 *   free 0x1400000 3072 order=10 n=3
 *   meta 0x1fd00000 514
 *   pools 0x1000000 carved=14 nfree=50 state=live pool=16384 96:160/170 64:255/255*3 - 400:10/40 .*50
 *   strata-heap end lines=211
 *
 * Memory lines (kind base pages ...), each a run of pages with one owner:
 *   free      free buddy blocks: n adjacent blocks of order `order`
 *             (pages = n << order); adjacent blocks of one order share a line
 *   reserved  pfa_reserve()d pages (kernel image, firmware, page 0, ...)
 *   meta      strata's page descriptors (reserved by pfa_setup_end())
 *   arena     one arena of the object allocator (see its pools line)
 *   large     one kmalloc large run: pages in the run, req = bytes asked
 *             for; the word `cached` if the run is freed and kept in the
 *             run cache for reuse
 *   pfa       blocks from pfa_alloc() that no layer above claims (a raw
 *             user, the tracer's tables, ...): n adjacent blocks of
 *             order `order` (strata's per-CPU areas and magazines are
 *             pool blocks, counted in their arena)
 *   cache     blocks marked PG_CACHE (kmem_cache slabs), as `pfa`
 *   bad       a page whose descriptor fits no block (pfa_check() would
 *             report it); one page per line
 *
 * Pools lines, one per arena (in the order of the arena list), after all
 * memory lines:  pools <arena base> carved=<pools ever carved>
 * nfree=<free pools> state=<live|spare|held> pool=<bytes per pool: 16384
 * for the small classes, up to half an arena for medium ones> <token> ...   with one token
 * per pool, pool 0 first:
 *   S:U/K     pool in use by the size class of S-byte blocks (see the
 *             class lines), U blocks handed out of K it holds (blocks in
 *             per-CPU caches count as handed out)
 *   -         carved, empty, on the arena's free-pool list
 *   .         never carved
 *   TOKEN*N   N equal tokens in a row
 *
 * The end line's `lines` counts every line of the dump including both
 * markers, so a reader can tell a truncated dump.
 */
#ifndef STRATA_HEAPDUMP_H
#define STRATA_HEAPDUMP_H
#include <strata/names.h>   /* -DSTRATA_PREFIX=...: prefixed names */

#include <stddef.h>

void mm_heap_dump(void (*out)(const char *s, size_t n));

#endif
