/*
 * arch/x86_64/acpi.c - finding the CPUs: ACPI RSDP -> RSDT/XSDT -> MADT.
 *
 *   RSDP "RSD PTR "    from the PVH start info (rsdp_paddr), else found by
 *     |                scanning the first KiB of the EBDA and the BIOS area
 *     |                0xe0000-0xfffff on 16-byte boundaries.
 *     |                Checksum over 20 bytes; revision >= 2 adds a length,
 *     |                a 64-bit XSDT address and a checksum over it all.
 *     v
 *   XSDT (64-bit entries, revision >= 2) or RSDT (32-bit entries)
 *     |  36-byte header: signature, length, ..., checksum over `length`
 *     v
 *   the table with signature "APIC", the MADT:
 *     +36 u32 local APIC address     +40 u32 flags     +44 entries:
 *       [type u8][length u8][...]    type 0: processor local APIC
 *                                      +2 ACPI id, +3 APIC id, +4 flags
 *                                      (bit 0: enabled)
 *                                    type 5: local APIC address override
 *                                      +4 u64 address
 *
 * The tables lie in memory the firmware map calls reserved or ACPI, which
 * the direct map does not cover: every read maps exactly the bytes it
 * looks at (read-only, cacheable, no-execute) with x86_map_late().  A
 * missing or malformed table is not fatal: one CPU (ourselves) and a
 * console line saying what was wrong.
 */
#include <stdint.h>
#include <string.h>
#include <kernel/console.h>
#include "x86.h"

#define SDT_HEADER_LEN   36
#define SDT_MAX_LEN      (1u << 20)       /* sanity bound for any table */
#define MADT_ENTRIES     44
#define MADT_LAPIC       0
#define MADT_LAPIC_ADDR  5
#define LAPIC_DEFAULT    0xfee00000ull

struct rsdp {
	char sig[8];                  /* "RSD PTR " */
	uint8_t checksum;             /* first 20 bytes sum to 0 */
	char oem[6];
	uint8_t revision;             /* 0: ACPI 1.0; >= 2: fields below */
	uint32_t rsdt;
	uint32_t length;
	uint64_t xsdt;
	uint8_t ext_checksum;         /* whole `length` sums to 0 */
	uint8_t reserved[3];
} __attribute__((packed));

struct sdt_header {
	char sig[4];
	uint32_t length;
	uint8_t revision, checksum;
	char oem[6], oem_table[8];
	uint32_t oem_revision, creator, creator_revision;
} __attribute__((packed));

_Static_assert(sizeof(struct rsdp) == 36, "ACPI 2.0 RSDP is 36 bytes");
_Static_assert(sizeof(struct sdt_header) == SDT_HEADER_LEN, "SDT header is 36 bytes");

uint64_t x86_rsdp_phys;
static struct x86_cpus cpus;

/* Physical addresses this CPU can address (CPUID 0x80000008 EAX[7:0]). */
static int phys_ok(uint64_t pa, uint64_t len)
{
	unsigned bits = x86_phys_bits();

	return pa != 0 && pa + len > pa && ((pa + len - 1) >> bits) == 0;
}

static const void *map_ro(uint64_t pa, uint64_t len)
{
	return x86_map_late(pa, len, x86_has_nx() ? PTE_NX : 0);
}

static uint8_t sum(const void *p, uint64_t n)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	while (n--)
		s += *b++;
	return s;
}

static int rsdp_valid(const struct rsdp *r)
{
	if (memcmp(r->sig, "RSD PTR ", 8) || sum(r, 20))
		return 0;
	return r->revision < 2 || (r->length >= sizeof(*r) && r->length <= 4096);
}

static uint64_t scan(uint64_t base, uint64_t len)
{
	const uint8_t *p = map_ro(base, len);

	for (uint64_t off = 0; off + sizeof(struct rsdp) <= len; off += 16)
		if (rsdp_valid((const struct rsdp *)(p + off)))
			return base + off;
	return 0;
}

/* The BIOS way: EBDA segment at 0x40e (first KiB of it), then the BIOS
 * read-only area. */
uint64_t x86_acpi_scan_rsdp(void)
{
	const uint16_t *ebda_seg = map_ro(0x40e, 2);
	uint64_t ebda = (uint64_t)*ebda_seg << 4;
	uint64_t found = 0;

	if (ebda >= 0x80000 && ebda < 0xa0000)
		found = scan(ebda, 1024);
	return found ? found : scan(0xe0000, 0x20000);
}

/* Map and check the table at pa: length sane, checksum 0, signature sig.
 * Prints why and returns NULL if not. */
static const struct sdt_header *map_table(uint64_t pa, const char *sig)
{
	const struct sdt_header *h;
	uint32_t len;

	if (!phys_ok(pa, SDT_HEADER_LEN)) {
		console_printf("acpi: %s table address 0x%lx is invalid\n", sig, (unsigned long)pa);
		return NULL;
	}
	h = map_ro(pa, SDT_HEADER_LEN);
	len = h->length;
	if (memcmp(h->sig, sig, 4) || len < SDT_HEADER_LEN || len > SDT_MAX_LEN ||
	    !phys_ok(pa, len)) {
		console_printf("acpi: no valid %s table at 0x%lx\n", sig, (unsigned long)pa);
		return NULL;
	}
	h = map_ro(pa, len);
	if (sum(h, len)) {
		console_printf("acpi: %s table at 0x%lx has a bad checksum\n", sig, (unsigned long)pa);
		return NULL;
	}
	return h;
}

static int sig_is(uint64_t pa, const char *sig)
{
	return phys_ok(pa, SDT_HEADER_LEN) && !memcmp(map_ro(pa, 4), sig, 4);
}

/* RSDT or XSDT -> the MADT, or NULL. */
static const struct sdt_header *find_madt(const struct rsdp *r)
{
	int x = r->revision >= 2 && r->xsdt;
	unsigned esize = x ? 8 : 4;
	const struct sdt_header *root = map_table(x ? r->xsdt : r->rsdt, x ? "XSDT" : "RSDT");

	if (!root)
		return NULL;
	for (uint32_t off = SDT_HEADER_LEN; off + esize <= root->length; off += esize) {
		uint64_t pa = 0;

		memcpy(&pa, (const uint8_t *)root + off, esize);   /* little endian */
		if (sig_is(pa, "APIC"))
			return map_table(pa, "APIC");
	}
	console_printf("acpi: no MADT (APIC) in the %s\n", x ? "XSDT" : "RSDT");
	return NULL;
}

/* Collect the enabled local APICs; 0 on success, -1 if malformed. */
static int madt_parse(const struct sdt_header *madt)
{
	const uint8_t *p = (const uint8_t *)madt;
	uint32_t lapic32, flags, off;

	if (madt->length < MADT_ENTRIES)
		return -1;
	memcpy(&lapic32, p + 36, 4);
	cpus.lapic_phys = lapic32;
	for (off = MADT_ENTRIES; off + 2 <= madt->length; off += p[off + 1]) {
		uint8_t type = p[off], len = p[off + 1];

		if (len < 2 || off + len > madt->length)
			return -1;
		if (type == MADT_LAPIC && len >= 8) {
			memcpy(&flags, p + off + 4, 4);
			if ((flags & 1) && cpus.n < X86_MAX_APIC_IDS)
				cpus.apic_id[cpus.n++] = p[off + 3];
		} else if (type == MADT_LAPIC_ADDR && len >= 12) {
			memcpy(&cpus.lapic_phys, p + off + 4, 8);
		}
	}
	return cpus.n && cpus.lapic_phys && !(cpus.lapic_phys & (PAGE_SIZE - 1)) ? 0 : -1;
}

static int boot_cpu_listed(void)
{
	for (unsigned i = 0; i < cpus.n; i++)
		if (cpus.apic_id[i] == x86_percpu[0].apic_id)
			return 1;
	return 0;
}

static int read_madt(void)
{
	uint64_t pa = x86_rsdp_phys ? x86_rsdp_phys : x86_acpi_scan_rsdp();
	const struct sdt_header *madt;
	const struct rsdp *r;

	if (!pa || !phys_ok(pa, sizeof(*r))) {
		console_printf("acpi: no RSDP found\n");
		return -1;
	}
	r = map_ro(pa, sizeof(*r));
	if (!rsdp_valid(r) || (r->revision >= 2 && sum(map_ro(pa, r->length), r->length))) {
		console_printf("acpi: RSDP at 0x%lx is invalid\n", (unsigned long)pa);
		return -1;
	}
	madt = find_madt(r);
	if (!madt)
		return -1;
	if (madt_parse(madt) || !boot_cpu_listed()) {
		console_printf("acpi: MADT at %p is malformed or does not list this CPU\n",
			       (const void *)madt);
		return -1;
	}
	return 0;
}

const struct x86_cpus *x86_acpi_cpus(void)
{
	static int done;

	if (done)
		return &cpus;
	done = 1;
	if (read_madt() == 0) {
		cpus.from_madt = 1;
		return &cpus;
	}
	console_printf("acpi: no usable MADT: running on the boot CPU only\n");
	cpus = (struct x86_cpus){ .lapic_phys = LAPIC_DEFAULT, .n = 1 };
	cpus.apic_id[0] = (uint8_t)x86_percpu[0].apic_id;
	return &cpus;
}
