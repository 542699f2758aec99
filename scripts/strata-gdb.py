# scripts/strata-gdb.py - gdb commands that understand strata's heap.
#
#     (gdb) source scripts/strata-gdb.py      (make debug's gdbinit does it)
#     (gdb) strata pfa                        free blocks per order, regions
#     (gdb) strata check                      the invariant walk
#     (gdb) help strata
#
# Everything is read from the target's memory through gdb: nothing runs
# in the kernel, so the commands work on a kernel stopped at a breakpoint,
# halted after a panic or frozen in a hang.  They need the kernel's debug
# information (the ELF strata was linked into, built with -g) and nothing
# else: any kernel that links strata can use them.
#
# Layer by layer, like mm/ itself: each command reads the state struct of
# the layer it shows, by the names that layer's header gives it, and
# follows the same arithmetic as the C code (the PFA's section table, the
# descriptor index math of mm/pfa_internal.h).  If the C side changes a
# name, the command says which symbol or field it could not find.
#
# Python 3, gdb >= 12; stdlib only.

import gdb

PAGE_SHIFT = 12
PFA_NIL = 0xFFFFFFFF
DESC_SIZE = 16                  # sizeof(struct page)

# enum page_owner, by name: values are read from the target's debug info
OWNER_NAMES = ["PG_UNMANAGED", "PG_RESERVED", "PG_FREE", "PG_FREE_TAIL",
               "PG_PFA", "PG_TAIL", "PG_LARGE", "PG_ARENA", "PG_POOL",
               "PG_CACHE"]


class StrataError(Exception):
    pass


def sym(name):
    """The value of a global, or a clear error naming it."""
    try:
        return gdb.parse_and_eval(name)
    except gdb.error as e:
        raise StrataError("cannot read '%s' (%s): is this a kernel that links strata, "
                          "with debug information?" % (name, e))


def field(v, name):
    try:
        return v[name]
    except gdb.error:
        raise StrataError("'%s' has no field '%s': strata-gdb.py and mm/ disagree"
                          % (v.type, name))


def u64(v):
    return int(v) & 0xFFFFFFFFFFFFFFFF


_enum_cache = {}


def enum_value(name):
    if name not in _enum_cache:
        _enum_cache[name] = int(sym(name))
    return _enum_cache[name]


def owner_name(value):
    for n in OWNER_NAMES:
        try:
            if enum_value(n) == value:
                return n
        except StrataError:
            pass
    return "owner %d" % value


# ---------------------------------------------------------------- memory

class Mem:
    """Reads of the target's memory, with the descriptors cached by index
    (a walk reads each one once)."""

    def __init__(self):
        self.inf = gdb.selected_inferior()
        self.desc_cache = {}

    def read(self, addr, n):
        try:
            return bytes(self.inf.read_memory(addr, n))
        except gdb.MemoryError:
            raise StrataError("cannot read %d bytes at 0x%x" % (n, addr))

    def u32(self, addr):
        return int.from_bytes(self.read(addr, 4), "little")

    def u64(self, addr):
        return int.from_bytes(self.read(addr, 8), "little")


# ---------------------------------------------------------------- level 0

class PFA:
    """The page-frame allocator's state (struct pfa_state pfa), with the
    index arithmetic of mm/pfa_internal.h."""

    def __init__(self, mem):
        self.mem = mem
        p = sym("pfa")
        self.v = p
        self.ready = bool(field(p, "ready"))
        self.sec_shift = int(field(p, "sec_shift"))
        self.npages = int(field(p, "npages"))
        self.base = u64(field(p, "base"))
        self.offset = u64(field(p, "offset"))
        self.free_pages = u64(field(p, "free_pages"))
        self.low_water = u64(field(p, "low_water"))
        self.total_pages = u64(field(p, "total_pages"))
        self.reserved_pages = u64(field(p, "reserved_pages"))
        self.fresh = bool(field(p, "fresh"))
        self.lazy_next = int(field(p, "lazy_next"))
        self.lazy_end = int(field(p, "lazy_end"))
        heads = field(p, "free_head")
        counts = field(p, "nr_free")
        self.max_order = heads.type.range()[1]
        self.free_head = [int(heads[k]) for k in range(self.max_order + 1)]
        self.nr_free = [u64(counts[k]) for k in range(self.max_order + 1)]
        self.nonempty = int(field(p, "nonempty"))
        self.regions = []
        for i in range(int(field(p, "nregions"))):
            r = field(p, "region")[i]
            self.regions.append((u64(r["base"]), u64(r["end"])))
        secs = field(p, "section")
        self.nsections = secs.type.range()[1] + 1
        self.sections = []
        for s in range(self.nsections):
            e = secs[s]
            self.sections.append((u64(e["bias"]), int(e["first"]), int(e["end"])))
        self.owner = {n: enum_value(n) for n in OWNER_NAMES}

    def phys(self, idx):
        return self.base + (idx << PAGE_SHIFT)

    def virt(self, pa):
        return (pa + self.offset) & 0xFFFFFFFFFFFFFFFF

    def idx_of(self, pa):
        """Index of pa, or None when pa has no descriptor."""
        off = (pa - self.base) & 0xFFFFFFFFFFFFFFFF
        if (off >> PAGE_SHIFT >> self.sec_shift) >= self.nsections:
            return None
        idx = off >> PAGE_SHIFT
        _, first, end = self.sections[idx >> self.sec_shift]
        if idx < first or idx >= end:
            return None
        return idx

    def desc_addr(self, idx):
        bias = self.sections[idx >> self.sec_shift][0]
        return (bias + idx * DESC_SIZE) & 0xFFFFFFFFFFFFFFFF

    CHUNK = 1024                # descriptors fetched per read (16 KiB)

    def desc(self, idx):
        """struct page of idx as a dict: next, prev, owner, order, cls, data.
        Descriptors are fetched CHUNK at a time (one remote read instead of
        a thousand); a chunk never crosses a section, so it is contiguous."""
        c = self.mem.desc_cache.get(idx)
        if c is None:
            lo = idx & ~(self.CHUNK - 1)
            _, first, end = self.sections[idx >> self.sec_shift]
            lo, hi = max(lo, first), min(lo + self.CHUNK, end)
            b = self.mem.read(self.desc_addr(lo), (hi - lo) * DESC_SIZE)
            for i in range(hi - lo):
                o = i * DESC_SIZE
                self.mem.desc_cache[lo + i] = {
                    "next": int.from_bytes(b[o:o + 4], "little"),
                    "prev": int.from_bytes(b[o + 4:o + 8], "little"),
                    "owner": b[o + 8], "order": b[o + 9],
                    "cls": int.from_bytes(b[o + 10:o + 12], "little"),
                    "data": int.from_bytes(b[o + 12:o + 16], "little")}
            c = self.mem.desc_cache[idx]
        return c

    def head_of(self, idx):
        """Index of the head of the block holding page idx, as
        pfa_head_idx() finds it: every page that is not a head is
        PG_FREE_TAIL, so the head is the nearest index below idx, aligned
        to some order, that is not (at most max_order probes).  None if
        the descriptors break that rule."""
        tail = self.owner["PG_FREE_TAIL"]
        head = idx
        while self.desc(head)["owner"] == tail:
            low = head & ((1 << self.max_order) - 1)
            if not low:
                return None
            head -= low & -low
        return head

    def lazy(self, idx):
        return self.fresh and self.lazy_next <= idx < self.lazy_end

    def free_list(self, order, problems, limit=1 << 24):
        """The indices on free list `order`, checking each link."""
        out, prev, idx = [], PFA_NIL, self.free_head[order]
        while idx != PFA_NIL:
            if len(out) >= limit or len(out) > self.npages:
                problems.append("order %d free list does not end (cycle?)" % order)
                break
            if idx >= self.npages or self.idx_of(self.phys(idx)) is None:
                problems.append("order %d free list: index %d has no descriptor" % (order, idx))
                break
            d = self.desc(idx)
            if d["owner"] != self.owner["PG_FREE"] or d["order"] != order:
                problems.append("order %d free list: block 0x%x is %s order %d"
                                % (order, self.phys(idx), owner_name(d["owner"]), d["order"]))
            if d["prev"] != prev:
                problems.append("order %d free list: block 0x%x prev %d, expected %d"
                                % (order, self.phys(idx), d["prev"], prev))
            if idx & ((1 << order) - 1):
                problems.append("order %d free list: block 0x%x not aligned to its order"
                                % (order, self.phys(idx)))
            out.append(idx)
            prev, idx = idx, d["next"]
        return out


def cmd_pfa(arg):
    mem = Mem()
    p = PFA(mem)
    if not p.ready:
        print("pfa: not set up (pfa_setup_end() has not run)")
        return
    print("pfa: %d pages in %d regions, %d reserved, %d free, low water %d"
          % (p.total_pages, len(p.regions), p.reserved_pages, p.free_pages, p.low_water))
    problems = []
    words = []
    listed = 0
    for k in range(p.max_order + 1):
        blocks = p.free_list(k, problems)
        words.append("%d:%d" % (k, len(blocks)))
        listed += len(blocks) << k
        if len(blocks) != p.nr_free[k]:
            problems.append("order %d: %d blocks on the list, nr_free says %d"
                            % (k, len(blocks), p.nr_free[k]))
    print("pfa: free blocks by order: " + " ".join(words))
    if p.fresh:
        print("pfa: fresh mode, %d pages not yet described (lazy span)"
              % (p.lazy_end - p.lazy_next))
    for i, (lo, hi) in enumerate(p.regions):
        print("pfa: region %d: 0x%x-0x%x, %d pages" % (i, lo, hi, (hi - lo) >> PAGE_SHIFT))
    lazy = (p.lazy_end - p.lazy_next) if p.fresh else 0
    if listed + lazy != p.free_pages:
        problems.append("free lists hold %d pages (+%d lazy), free_pages says %d"
                        % (listed, lazy, p.free_pages))
    for msg in problems:
        print("pfa: PROBLEM: " + msg)


def check_pfa(mem, problems):
    """The PFA half of pfa_check(), from memory: every free list is a
    well-linked list of aligned PG_FREE heads of its order, the counts
    agree, every other page of a free block is PG_FREE_TAIL, no two free buddies
    are left unmerged."""
    p = PFA(mem)
    if not p.ready:
        return 0
    total = 0
    for k in range(p.max_order + 1):
        blocks = p.free_list(k, problems)
        if len(blocks) != p.nr_free[k]:
            problems.append("pfa: order %d has %d blocks on its list, nr_free %d"
                            % (k, len(blocks), p.nr_free[k]))
        if bool(blocks) != bool(p.nonempty & (1 << k)):
            problems.append("pfa: order %d nonempty bit is %d with %d blocks"
                            % (k, (p.nonempty >> k) & 1, len(blocks)))
        for idx in blocks:
            total += 1 << k
            for t in range(idx + 1, min(idx + (1 << k), p.npages)):
                if p.lazy(t):
                    continue
                if p.desc(t)["owner"] != p.owner["PG_FREE_TAIL"]:
                    problems.append("pfa: page 0x%x inside free block 0x%x (order %d) is %s"
                                    % (p.phys(t), p.phys(idx), k, owner_name(p.desc(t)["owner"])))
                    break
            if k < p.max_order:
                b = idx ^ (1 << k)
                if b < p.npages and p.idx_of(p.phys(b)) is not None and not p.lazy(b):
                    d = p.desc(b)
                    if d["owner"] == p.owner["PG_FREE"] and d["order"] == k:
                        problems.append("pfa: free buddies 0x%x and 0x%x (order %d) not merged"
                                        % (p.phys(idx), p.phys(b), k))
    lazy = (p.lazy_end - p.lazy_next) if p.fresh else 0
    if total + lazy != p.free_pages:
        problems.append("pfa: free lists hold %d pages (+%d lazy), free_pages %d"
                        % (total, lazy, p.free_pages))
    return sum(p.nr_free)


def whatis_page(p, pa):
    """(layer, description) of the page holding pa, as the PFA sees it."""
    idx = p.idx_of(pa)
    if idx is None:
        return None, "0x%x is not in RAM strata manages" % pa
    if p.lazy(idx):
        return "pfa", "0x%x: free page of the PFA (lazy span, not yet described)" % pa
    own = p.desc(idx)["owner"]
    head = p.head_of(idx)
    if head is None:
        return "pfa", "0x%x: no block head below it (%s): broken descriptors" % (
            pa, owner_name(own))
    dh = p.desc(head)
    if dh["owner"] == p.owner["PG_FREE"]:
        return "pfa", ("0x%x: free, in the order-%d buddy block at 0x%x"
                       % (pa, dh["order"], p.phys(head)))
    return owner_name(dh["owner"]), {"head": head, "desc": dh, "idx": idx}


def cmd_whatis(arg):
    if not arg.strip():
        raise StrataError("usage: strata whatis ADDRESS (virtual or physical)")
    addr = u64(gdb.parse_and_eval(arg))
    mem = Mem()
    p = PFA(mem)
    # a direct-map virtual address, or a physical one
    pa = (addr - p.offset) & 0xFFFFFFFFFFFFFFFF
    if p.idx_of(pa) is None and p.idx_of(addr) is not None:
        pa = addr
    layer, what = whatis_page(p, pa)
    if layer is None or isinstance(what, str):
        print(what)
        return
    for fn in WHATIS_BY_OWNER.get(layer, []):
        text = fn(mem, p, pa, what)
        if text:
            print(text)
            return
    dh = what["desc"]
    print("0x%x: page of a block owned by %s (head 0x%x, order %d)"
          % (pa, layer, p.phys(what["head"]), dh["order"]))


# Upper layers add describers: owner name -> [fn(mem, pfa, pa, info) -> str]
WHATIS_BY_OWNER = {}
# and checkers: [fn(mem, problems) -> objects checked]
CHECKS = [("pfa", check_pfa)]


def cmd_check(arg):
    mem = Mem()
    problems = []
    counts = []
    for name, fn in CHECKS:
        try:
            counts.append("%s %d" % (name, fn(mem, problems)))
        except StrataError as e:
            problems.append("%s: %s" % (name, e))
    for msg in problems:
        print("PROBLEM: " + msg)
    print("strata check: %d problems (%s)" % (len(problems), ", ".join(counts)))


COMMANDS = {
    "pfa": (cmd_pfa, "free blocks per order, regions, free pages and low water"),
    "whatis": (cmd_whatis, "ADDR: which layer owns ADDR and what it is there"),
    "check": (cmd_check, "walk every layer's structures and check the invariants"),
}


class StrataCommand(gdb.Command):
    """strata SUBCOMMAND: inspect strata's heap from memory.

Subcommands (each reads the target's memory; nothing runs in the kernel):"""

    def __init__(self):
        super().__init__("strata", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)

    def invoke(self, arg, from_tty):
        words = arg.split(None, 1)
        if not words or words[0] not in COMMANDS:
            print("usage: strata " + "|".join(COMMANDS) + " ...")
            for n, (_, h) in COMMANDS.items():
                print("  strata %-9s %s" % (n, h))
            return
        fn = COMMANDS[words[0]][0]
        try:
            fn(words[1] if len(words) > 1 else "")
        except StrataError as e:
            print("strata %s: %s" % (words[0], e))


StrataCommand()
