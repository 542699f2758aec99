/*
 * cxx_operators.c - C++'s operator new and delete for libstrata.so,
 * written in C (included by arch/host/libstrata.c after mm/malloc_std.c).
 *
 *   new, new[]                 (size)  (size, nothrow)  (size, align)
 *                              (size, align, nothrow)
 *   delete, delete[]           (p)  (p, nothrow)  (p, size)  (p, align)
 *                              (p, size, align)  (p, align, nothrow)
 *
 * Each is defined under its Itanium C++ ABI name (_Znwm, _ZdlPvm, ...),
 * so the .so exports them without being C++ and without linking
 * libstdc++.  What C++ asks of a failing new comes from the program's own
 * libstdc++, found at run time through weak references:
 *
 *   new fails     std::get_new_handler(): a handler is called and the
 *                 allocation tried again, as long as there is one; then
 *                 the throwing forms throw std::bad_alloc (libstdc++'s
 *                 std::__throw_bad_alloc, so the exception is its own),
 *                 the nothrow forms return NULL.  A process without
 *                 libstdc++ (a C program calling _Znwm) has neither: the
 *                 throwing forms print a line and abort().  (A handler that
 *                 throws from a nothrow new is not caught here: the C frames
 *                 pass the exception on, they do not turn it into NULL.)
 *   delete        every form passes its caller down (reports name the
 *                 program's code); the sized and aligned forms go through
 *                 kfree_sized_caller(), which checks what delete is told:
 *                 a size whose class is not the block's (in debug mode: not
 *                 exactly the size asked for) is MM_BUG_SIZED_DELETE, an
 *                 aligned delete of a block from a plain new (or the
 *                 reverse, in debug mode), or a pointer off the alignment,
 *                 MM_BUG_ALIGNED_DELETE; reported with the debug policy
 *                 (STRATA_DEBUG abort or continue), then freed.
 *
 * An alignment over 16 bytes (std::align_val_t) is served as memalign()
 * is (kmalloc_aligned: a plain block, also in debug mode); one that is no
 * power of two cannot come from C++ and fails as out of memory.
 */
#include <stddef.h>

typedef void (*new_handler_fn)(void);
extern new_handler_fn cxx_get_new_handler(void) __asm__("_ZSt15get_new_handlerv")
	__attribute__((weak));
extern void cxx_throw_bad_alloc(void) __asm__("_ZSt17__throw_bad_allocv")
	__attribute__((weak, noreturn));

/* One try (with the heap's own growth), then the new handler's tries. */
static void *new_with_handler(size_t n, size_t align, void *caller)
{
	STRATA_STD_ENTRY();
	for (;;) {
		void *p = align > KMALLOC_MIN_ALIGN ? aligned_grown(n, align, caller)
						    : WITH_GROWTH(kmalloc_caller(n, 0, caller), n, 0);
		if (p)
			return p;
		new_handler_fn h = cxx_get_new_handler ? cxx_get_new_handler() : NULL;
		if (!h)
			return NULL;
		h();
	}
}

static __attribute__((noreturn, noinline)) void new_failed(size_t n)
{
	if (cxx_throw_bad_alloc)
		cxx_throw_bad_alloc();
	char line[96];
	int len = snprintf(line, sizeof line,
			   "strata: operator new(%zu): out of memory, no libstdc++ to throw\n", n);
	mm_platform_write(line, (size_t)len);
	abort();
}

static void *new_throwing(size_t n, size_t align, void *caller)
{
	void *p = new_with_handler(n, align, caller);
	if (UNLIKELY(!p))
		new_failed(n);
	return p;
}

#define CXX_NEW(name, ...) EXPORT void *name(__VA_ARGS__)
#define CXX_DELETE(name, ...) EXPORT void name(__VA_ARGS__)
#define NOTHROW_T const void *nothrow_tag __attribute__((unused))

/* ---- new ---- */
void *cxx_new(size_t) __asm__("_Znwm");
void *cxx_new_arr(size_t) __asm__("_Znam");
void *cxx_new_nt(size_t, const void *) __asm__("_ZnwmRKSt9nothrow_t");
void *cxx_new_arr_nt(size_t, const void *) __asm__("_ZnamRKSt9nothrow_t");
void *cxx_new_al(size_t, size_t) __asm__("_ZnwmSt11align_val_t");
void *cxx_new_arr_al(size_t, size_t) __asm__("_ZnamSt11align_val_t");
void *cxx_new_al_nt(size_t, size_t, const void *) __asm__("_ZnwmSt11align_val_tRKSt9nothrow_t");
void *cxx_new_arr_al_nt(size_t, size_t, const void *)
	__asm__("_ZnamSt11align_val_tRKSt9nothrow_t");

CXX_NEW(cxx_new, size_t n) { return new_throwing(n, 0, RET_ADDR()); }
CXX_NEW(cxx_new_arr, size_t n) { return new_throwing(n, 0, RET_ADDR()); }
CXX_NEW(cxx_new_nt, size_t n, NOTHROW_T) { return new_with_handler(n, 0, RET_ADDR()); }
CXX_NEW(cxx_new_arr_nt, size_t n, NOTHROW_T) { return new_with_handler(n, 0, RET_ADDR()); }
CXX_NEW(cxx_new_al, size_t n, size_t al) { return new_throwing(n, al, RET_ADDR()); }
CXX_NEW(cxx_new_arr_al, size_t n, size_t al) { return new_throwing(n, al, RET_ADDR()); }
CXX_NEW(cxx_new_al_nt, size_t n, size_t al, NOTHROW_T)
{
	return new_with_handler(n, al, RET_ADDR());
}
CXX_NEW(cxx_new_arr_al_nt, size_t n, size_t al, NOTHROW_T)
{
	return new_with_handler(n, al, RET_ADDR());
}

/* ---- delete ---- */
void cxx_del(void *) __asm__("_ZdlPv");
void cxx_del_arr(void *) __asm__("_ZdaPv");
void cxx_del_nt(void *, const void *) __asm__("_ZdlPvRKSt9nothrow_t");
void cxx_del_arr_nt(void *, const void *) __asm__("_ZdaPvRKSt9nothrow_t");
void cxx_del_sz(void *, size_t) __asm__("_ZdlPvm");
void cxx_del_arr_sz(void *, size_t) __asm__("_ZdaPvm");
void cxx_del_al(void *, size_t) __asm__("_ZdlPvSt11align_val_t");
void cxx_del_arr_al(void *, size_t) __asm__("_ZdaPvSt11align_val_t");
void cxx_del_sz_al(void *, size_t, size_t) __asm__("_ZdlPvmSt11align_val_t");
void cxx_del_arr_sz_al(void *, size_t, size_t) __asm__("_ZdaPvmSt11align_val_t");
void cxx_del_al_nt(void *, size_t, const void *) __asm__("_ZdlPvSt11align_val_tRKSt9nothrow_t");
void cxx_del_arr_al_nt(void *, size_t, const void *)
	__asm__("_ZdaPvSt11align_val_tRKSt9nothrow_t");

CXX_DELETE(cxx_del, void *p) { kfree_caller(p, RET_ADDR()); }
CXX_DELETE(cxx_del_arr, void *p) { kfree_caller(p, RET_ADDR()); }
CXX_DELETE(cxx_del_nt, void *p, NOTHROW_T) { kfree_caller(p, RET_ADDR()); }
CXX_DELETE(cxx_del_arr_nt, void *p, NOTHROW_T) { kfree_caller(p, RET_ADDR()); }
CXX_DELETE(cxx_del_sz, void *p, size_t n) { kfree_sized_caller(p, n, 0, RET_ADDR()); }
CXX_DELETE(cxx_del_arr_sz, void *p, size_t n) { kfree_sized_caller(p, n, 0, RET_ADDR()); }
CXX_DELETE(cxx_del_al, void *p, size_t al) { kfree_sized_caller(p, 0, al, RET_ADDR()); }
CXX_DELETE(cxx_del_arr_al, void *p, size_t al) { kfree_sized_caller(p, 0, al, RET_ADDR()); }
CXX_DELETE(cxx_del_sz_al, void *p, size_t n, size_t al)
{
	kfree_sized_caller(p, n, al, RET_ADDR());
}
CXX_DELETE(cxx_del_arr_sz_al, void *p, size_t n, size_t al)
{
	kfree_sized_caller(p, n, al, RET_ADDR());
}
CXX_DELETE(cxx_del_al_nt, void *p, size_t al, NOTHROW_T)
{
	kfree_sized_caller(p, 0, al, RET_ADDR());
}
CXX_DELETE(cxx_del_arr_al_nt, void *p, size_t al, NOTHROW_T)
{
	kfree_sized_caller(p, 0, al, RET_ADDR());
}
