/*
 * fault.c - base layer: fault injection, the test hook that fails chosen
 * allocation calls (strata/fault.h has the points, modes and text form).
 *
 * Each injection point is one line in the layer that owns the call:
 *
 *     phys_addr_t pfa_alloc(unsigned order, unsigned flags)
 *     {
 *             if (MM_FAULT(MM_FAULT_PFA))
 *                     return 0;                  as if out of memory
 *             ...
 *
 * and MM_FAULT(p) is the constant 0 unless mm/ is built with
 * -DMM_FAULT_INJECT=1, so an ordinary build compiles the line away.  In
 * a fault build it is a call here:
 *
 *     mm_fault_hit(p):  i = ++rule[p].calls            (atomic: SMP safe)
 *                       fail = NTH     i == n
 *                              EVERY   i % n == 0
 *                              RANDOM  mix(seed, i) % n == 0
 *                       fail -> ++rule[p].injected
 *
 * The decision depends only on the call's number, never on a shared
 * generator state: the random mode is a hash (splitmix64's finaliser) of
 * seed and number, so a given seed and call order fail the same calls on
 * every run, and CPUs racing for numbers need no lock.  The rules sit in
 * the base layer because every level has an injection point (the PFA at
 * level 1 up to the kmem caches at level 8, and the platform's own calls
 * in arch/); none of them is called from here.
 */
#include <strata/fault.h>

#include "util.h"

static const char *const point_names[MM_FAULT_POINTS] = {
	[MM_FAULT_PFA] = "pfa", [MM_FAULT_ARENA] = "arena", [MM_FAULT_MAGAZINE] = "magazine",
	[MM_FAULT_SLAB] = "slab", [MM_FAULT_OS] = "os",
};

const char *mm_fault_point_name(unsigned point)
{
	return point < MM_FAULT_POINTS ? point_names[point] : "?";
}

#if MM_FAULT_INJECT
struct fault_rule {
	unsigned mode;          /* enum mm_fault_mode */
	uint64_t n, seed;
	uint64_t calls, injected;
};

static struct fault_rule rule[MM_FAULT_POINTS];
static int paused;

/* splitmix64's finaliser: a good 64-bit mix of (seed, call number). */
static uint64_t mix(uint64_t seed, uint64_t i)
{
	uint64_t z = seed + i * 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static bool decide(const struct fault_rule *r, uint64_t i)
{
	switch (__atomic_load_n(&r->mode, __ATOMIC_ACQUIRE)) {
	case MM_FAULT_NTH:    return i == r->n;
	case MM_FAULT_EVERY:  return i % r->n == 0;
	case MM_FAULT_RANDOM: return mix(r->seed, i) % r->n == 0;
	default:              return false;
	}
}

bool mm_fault_hit(unsigned point)
{
	if (point >= MM_FAULT_POINTS || mm_load(paused))
		return false;
	struct fault_rule *r = &rule[point];
	uint64_t i = __atomic_add_fetch(&r->calls, 1, __ATOMIC_RELAXED);
	if (!decide(r, i))
		return false;
	__atomic_add_fetch(&r->injected, 1, __ATOMIC_RELAXED);
	return true;
}

static void set_one(struct fault_rule *r, unsigned mode, uint64_t n, uint64_t seed)
{
	mm_store(r->mode, MM_FAULT_OFF);     /* no decision on a half-set rule */
	r->n = n;
	r->seed = seed;
	mm_store(r->calls, 0);
	mm_store(r->injected, 0);
	__atomic_store_n(&r->mode, mode, __ATOMIC_RELEASE);
}

int mm_fault_set(unsigned point, enum mm_fault_mode mode, uint64_t n, uint64_t seed)
{
	if (point > MM_FAULT_ALL || (unsigned)mode > MM_FAULT_RANDOM ||
	    (mode != MM_FAULT_OFF && n == 0))
		return -1;
	for (unsigned p = 0; p < MM_FAULT_POINTS; p++)
		if (point == MM_FAULT_ALL || point == p)
			set_one(&rule[p], mode, n, seed);
	return 0;
}

void mm_fault_get(unsigned point, struct mm_fault_stats *st)
{
	st->calls = st->injected = 0;
	for (unsigned p = 0; p < MM_FAULT_POINTS; p++)
		if (point == MM_FAULT_ALL || point == p) {
			st->calls += mm_load(rule[p].calls);
			st->injected += mm_load(rule[p].injected);
		}
}

int mm_fault_pause(int on)
{
	return __atomic_exchange_n(&paused, on != 0, __ATOMIC_RELAXED);
}

/* ---- the text form: "pfa,arena:every=7", "all:random=42,1in=50" ---- */

/* s starts with word w followed by one of the bytes in `ends` (the end
 * of the string if ends is "")?  Where w ends, or NULL. */
static const char *skip_word(const char *s, const char *w, const char *ends)
{
	while (*w && *s == *w)
		s++, w++;
	if (*w)
		return NULL;
	if (!*ends)
		return *s ? NULL : s;
	for (; *ends; ends++)
		if (*s == *ends)
			return s;
	return NULL;
}

/* A decimal number >= 1 ending at one of `ends`; NULL if there is none. */
static const char *parse_u64(const char *s, uint64_t *v, const char *ends)
{
	const char *start = s;

	for (*v = 0; *s >= '0' && *s <= '9'; s++) {
		if (*v > (UINT64_MAX - 9) / 10)
			return NULL;
		*v = *v * 10 + (uint64_t)(*s - '0');
	}
	return s > start ? skip_word(s, "", ends) : NULL;
}

/* The point list before ':', as a bit mask; 0 if a name is unknown. */
static unsigned parse_points(const char **sp)
{
	const char *s = *sp, *e;
	unsigned mask = 0;

	for (;;) {
		if ((e = skip_word(s, "all", ",:")) != NULL) {
			mask |= (1u << MM_FAULT_POINTS) - 1;
		} else {
			unsigned p;
			for (p = 0; p < MM_FAULT_POINTS; p++)
				if ((e = skip_word(s, point_names[p], ",:")) != NULL)
					break;
			if (p == MM_FAULT_POINTS)
				return 0;
			mask |= 1u << p;
		}
		s = e + 1;
		if (*e == ':')
			break;
	}
	*sp = s;
	return mask;
}

/* RULE after the ':'; -1 if not understood. */
static int parse_rule(const char *s, unsigned *mode, uint64_t *n, uint64_t *seed)
{
	const char *e;

	*n = *seed = 0;
	if ((e = skip_word(s, "off", "")) != NULL) {
		*mode = MM_FAULT_OFF;
		return 0;
	}
	if ((e = skip_word(s, "nth=", "0123456789")) != NULL) {
		*mode = MM_FAULT_NTH;
		return parse_u64(e, n, "") && *n ? 0 : -1;
	}
	if ((e = skip_word(s, "every=", "0123456789")) != NULL) {
		*mode = MM_FAULT_EVERY;
		return parse_u64(e, n, "") && *n ? 0 : -1;
	}
	if ((e = skip_word(s, "random=", "0123456789")) != NULL) {
		*mode = MM_FAULT_RANDOM;
		if (!(e = parse_u64(e, seed, ",")) || !(e = skip_word(e + 1, "1in=", "0123456789")))
			return -1;
		return parse_u64(e, n, "") && *n ? 0 : -1;
	}
	return -1;
}

int mm_fault_setup(const char *spec)
{
	unsigned mode;
	uint64_t n, seed;

	if (!spec)
		return -1;
	unsigned mask = parse_points(&spec);
	if (!mask || parse_rule(spec, &mode, &n, &seed) != 0)
		return -1;
	for (unsigned p = 0; p < MM_FAULT_POINTS; p++)
		if (mask & (1u << p))
			mm_fault_set(p, (enum mm_fault_mode)mode, n, seed);
	return 0;
}

#else  /* !MM_FAULT_INJECT: nothing is ever failed */

bool mm_fault_hit(unsigned point)
{
	(void)point;
	return false;
}

int mm_fault_set(unsigned point, enum mm_fault_mode mode, uint64_t n, uint64_t seed)
{
	(void)point, (void)mode, (void)n, (void)seed;
	return -1;
}

int mm_fault_setup(const char *spec)
{
	(void)spec;
	return -1;
}

void mm_fault_get(unsigned point, struct mm_fault_stats *st)
{
	(void)point;
	st->calls = st->injected = 0;
}

int mm_fault_pause(int on)
{
	(void)on;
	return 0;
}
#endif
