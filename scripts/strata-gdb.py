# scripts/strata-gdb.py - gdb commands that understand strata's heap.
#
#     (gdb) source scripts/strata-gdb.py      (make debug's gdbinit does it)
#     (gdb) strata pfa                        free blocks per order, regions
#     (gdb) strata pools                      arenas, pools per class, fullness
#     (gdb) strata slabinfo                   the kmem caches, their magazines
#     (gdb) strata whatis ADDR                which layer owns ADDR, and how
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
# descriptor index math of mm/pfa_internal.h, the free-link decoding of
# mm/pool.h, the statistics of mm/kmalloc_stats.c).  Structs are read by
# their C types (a gdb.Value of the bytes read in one go, or a Layout of
# their fields' offsets when thousands are unpacked); file-local state is
# named 'file.c'::name.  If the C side changes a name, the command says
# which symbol or field it could not find.
#
# Python 3, gdb >= 12; stdlib only.

import gdb

PAGE_SHIFT = 12
PFA_NIL = 0xFFFFFFFF

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


class Layout:
    """Where the scalar fields of a C struct lie, from the debug
    information (gdb's type), to unpack many structs from one read."""

    def __init__(self, tname):
        try:
            t = gdb.lookup_type(tname).strip_typedefs()
        except gdb.error as e:
            raise StrataError("no type '%s' in the debug information (%s)" % (tname, e))
        self.size = t.sizeof
        self.fields = {}
        for f in t.fields():
            ft = f.type.strip_typedefs()
            if ft.code in (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_PTR, gdb.TYPE_CODE_ENUM,
                           gdb.TYPE_CODE_BOOL):
                self.fields[f.name] = (f.bitpos // 8, ft.sizeof)

    def unpack(self, b, base=0):
        return {n: int.from_bytes(b[base + o:base + o + k], "little")
                for n, (o, k) in self.fields.items()}

    def off(self, name):
        return self.fields[name][0]


_layouts = {}


def layout(tname):
    if tname not in _layouts:
        _layouts[tname] = Layout(tname)
    return _layouts[tname]


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

    def value(self, addr, tname):
        """The struct at addr as a gdb.Value of its C type, read in one go
        (its fields are then read from the copy, not the target)."""
        t = gdb.lookup_type(tname) if isinstance(tname, str) else tname
        return gdb.Value(self.read(addr, t.sizeof), t)

    def global_value(self, name):
        """A global (or 'file.c'::static) read whole, by its C type."""
        v = sym(name)
        return gdb.Value(self.read(u64(v.address), v.type.sizeof), v.type)


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
        return (bias + idx * layout("struct page").size) & 0xFFFFFFFFFFFFFFFF

    CHUNK = 1024                # descriptors fetched per read (16 KiB)

    def desc(self, idx):
        """struct page of idx as a dict: next, prev, owner, order, cls, data.
        THE one place that reads page descriptors (their layout comes from
        the debug information of struct page).  Descriptors are fetched
        CHUNK at a time (one remote read instead of a thousand); a chunk
        never crosses a section, so it is contiguous."""
        c = self.mem.desc_cache.get(idx)
        if c is None:
            lay = layout("struct page")
            size = lay.size
            lo = idx & ~(self.CHUNK - 1)
            _, first, end = self.sections[idx >> self.sec_shift]
            lo, hi = max(lo, first), min(lo + self.CHUNK, end)
            b = self.mem.read(self.desc_addr(lo), (hi - lo) * size)
            for i in range(hi - lo):
                self.mem.desc_cache[lo + i] = lay.unpack(b, i * size)
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
    if not p.ready:
        print("0x%x: the page-frame allocator is not set up yet (pfa_setup_end() has not run)"
              % addr)
        return
    # a direct-map virtual address, or a physical one
    pa = (addr - p.offset) & 0xFFFFFFFFFFFFFFFF
    if p.idx_of(pa) is None and p.idx_of(addr) is not None:
        pa = addr
    layer, what = whatis_page(p, pa)
    if layer is None:
        # not a heap address: say what gdb knows of it (a global, code)
        try:
            known = gdb.execute("info symbol 0x%x" % addr, to_string=True).strip()
        except gdb.error:
            known = ""
        print("0x%x: not a direct-map or physical address of RAM strata manages%s"
              % (addr, "; gdb: " + known if known and not known.startswith("No symbol")
                 else ""))
        return
    if isinstance(what, str):
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


# ---------------------------------------------------------------- level +1..+3
#
# The object allocator (mm/obj_layout.h, arena.h, pool.h), the per-CPU
# magazines (magazine.h, percpu_internal.h), the large runs (large.c), the
# kmem caches (slab.c) and the wrappers (debug.c, trace.c).  Structs are
# read by their C types; what the C side keeps in macros (magic numbers,
# tags) is repeated here, each with the file that defines it.

KM_FREE_MAGIC = 0xffffffffffffffff      # obj_layout.h (~0: the mark is ~b)
KM_MAG_MAGIC = KM_FREE_MAGIC ^ 1         # obj_layout.h
LARGE_CONT = 0x4c43                     # large.c: further block of a run
LARGE_CACHED = 0x4c46                   # large.c: run in the run cache
SLAB_MAGIC = 0x736c61622d686472         # slab.c
DBG_LIVE = 0x6c6976652d646267           # debug.c
DBG_DEAD = 0x646561642d646267           # debug.c
DBG_LEFT = 16                           # debug.c: red zone before the data
TRACES_ORDER = 8                        # trace.c: traces[] is 2^8 pages
MASK64 = 0xFFFFFFFFFFFFFFFF


def try_value(mem, name):
    """A global read whole, or None if this kernel does not have it (a
    layer compiled out, e.g. debug.c under MM_DEBUG=0)."""
    try:
        return mem.global_value(name)
    except (StrataError, gdb.error):
        return None


def array_len(v):
    r = v.type.strip_typedefs().range()
    return r[1] - r[0] + 1


def commas(v):
    return "{:,}".format(v)


class ObjHeap:
    """The object allocator's state, read once: the classes, every arena
    and its pools' headers, the magazines, the large runs."""

    def __init__(self, mem, pfa):
        self.mem, self.pfa = mem, pfa
        pv = mem.global_value("pools")
        av = mem.global_value("arenas")
        self.pools_v, self.arenas_v = pv, av
        self.nclasses = int(pv["nclasses"])
        self.secret = u64(pv["secret"])
        self.held = u64(pv["held"])
        self.maxclasses = array_len(pv["usedpools"])
        self.usedpools = [u64(pv["usedpools"][c]) for c in range(self.maxclasses)]
        self.cls = []
        for c in range(self.nclasses):
            k = pv["cls"][c]
            self.cls.append({n: int(k[n]) for n in ("size", "first", "first0", "cap", "cap0",
                                                    "pool_size", "pool_pages", "kind")})
        self.kinds = array_len(av["bucket"])                     # KM_KINDS
        self.arena_pools = array_len(av["bucket"][0]) - 1        # KM_ARENA_POOLS (kind 0)
        self.all = u64(av["all"])
        self.spare = u64(av["spare"])
        self.current = u64(av["current"])
        self.pool_lay = layout("struct km_pool")
        self.arena_lay = layout("struct km_arena")
        self.block_lay = layout("struct km_block")
        self.hdr = self.pool_lay.size                            # KM_HDR
        self.hdr0 = self.hdr + self.arena_lay.size               # KM_HDR0
        self.arenas = self._walk_arenas()
        if self.arenas:
            a = self.arenas[0]
            d = pfa.desc(pfa.idx_of(a["pa"]))
            self.arena_size = 1 << (d["order"] + PAGE_SHIFT)
        else:
            self.arena_size = 1 << 20        # a guess: only "0 arenas * N bytes" shows it
        self.pool_size = self.arena_size // self.arena_pools     # the small pools'
        self._pool_hdr = {}

    def _walk_arenas(self):
        out, a = [], self.all
        while a and len(out) <= self.current:
            h = self.arena_lay.unpack(self.mem.read(a, self.arena_lay.size))
            h["addr"] = a
            h["base"] = (a - self.hdr) & MASK64
            out.append(h)
            a = h["anext"]
        return out

    def pool_at(self, arena, i):
        return arena["base"] + (i << arena["pool_shift"])

    def arena_pool_size(self, arena):
        return 1 << arena["pool_shift"]

    def pool_in_use(self, arena, i):
        """arena_pool_in_use(): carved, and its descriptors say a class."""
        if i >= arena["nextpool"]:
            return False
        idx = self.pfa.idx_of((arena["pa"] + (i << arena["pool_shift"])) & MASK64)
        return idx is not None and self.pfa.desc(idx)["cls"] != 0

    def pool(self, addr):
        """A pool header (dict of struct km_pool's fields), cached."""
        h = self._pool_hdr.get(addr)
        if h is None:
            h = self.pool_lay.unpack(self.mem.read(addr, self.pool_lay.size))
            h["addr"] = addr
            self._pool_hdr[addr] = h
        return h

    def capacity(self, p):
        k = self.cls[p["cls"]]
        return k["cap0"] if p["index"] == 0 else k["cap"]

    def state(self, arena):
        a = arena["addr"]
        return "spare" if a == self.spare else "held" if a == self.held else "live"

    def decode(self, addr, enc):
        """km_next(): the link a free block at addr holds."""
        return enc ^ self.secret ^ (addr + self.block_lay.off("enc"))

    def free_list(self, p, problems, where):
        """The blocks on pool p's free list, each link checked as km_next_ok
        and pool_check.c check it; the walk stops at the first bad link."""
        if not p["freeblock"]:
            return []                   # a full pool: nothing to read
        k = self.cls[p["cls"]]
        base = p["addr"]
        data = self.mem.read(base, k["pool_size"])
        eo, mo = self.block_lay.off("enc"), self.block_lay.off("mark")
        carved = p["carved"] // k["size"]
        out, prev, b = [], None, p["freeblock"]
        while b:
            rel = (b - base - p["first"]) & MASK64
            ok_link = ((b - base) & MASK64 <= p["maxnextoffset"] and b & 15 == 0)
            if not ok_link or rel >= p["carved"] or rel % k["size"]:
                src = ("freeblock" if prev is None else "block 0x%x" % prev)
                problems.append("%s: pool 0x%x (class %d, %d B) free list: %s links to 0x%x, "
                                "%s" % (where, base, p["cls"], k["size"], src, b,
                                        "outside the pool" if not ok_link else
                                        "not a carved block boundary"))
                break
            off = b - base
            enc = int.from_bytes(data[off + eo:off + eo + 8], "little")
            mark = int.from_bytes(data[off + mo:off + mo + 8], "little")
            if mark != b ^ KM_FREE_MAGIC:
                problems.append("%s: pool 0x%x (class %d) free list: block 0x%x has mark 0x%x, "
                                "not the free mark" % (where, base, p["cls"], b, mark))
                break
            out.append(b)
            if len(out) > carved:
                problems.append("%s: pool 0x%x (class %d) free list longer than its %d carved "
                                "blocks (cycle?)" % (where, base, p["cls"], carved))
                break
            prev, b = b, self.decode(b, enc)
        return out

    # ---- magazines ----
    def cpu_slots(self):
        """{(class, cpu, 'loaded'|'prev'): magazine address} of every CPU."""
        v = sym("km_pcpu")
        out = {}
        for cpu in range(array_len(v)):
            area = u64(v[cpu])
            if not area:
                continue
            pc = self.mem.value(area, "struct km_pcpu")
            for c in range(self.nclasses):
                for which in ("loaded", "prev"):
                    out[(c, cpu, which)] = u64(pc["slot"][c][which])
        return out

    def depot_mags(self, depot):
        """Full magazines of a struct mm_depot value."""
        out, m, n = [], u64(depot["full"]), 0
        while m and n < 1 << 16:
            out.append(m)
            m = u64(self.mem.value(m, "struct mm_mag")["next"])
            n += 1
        return out

    def mag_objects(self, m):
        v = self.mem.value(m, "struct mm_mag")
        n = min(int(v["count"]), array_len(v["obj"]))
        return [u64(v["obj"][i]) for i in range(n)]

    def class_depots(self):
        return try_value(self.mem, "'percpu.c'::depot")

    def percpu_cached(self):
        """pcpu_cached_blocks() of every class: depots plus every CPU."""
        n = [0] * self.nclasses
        for (c, _, _), m in self.cpu_slots().items():
            n[c] += int(self.mem.value(m, "struct mm_mag")["count"])
        dep = self.class_depots()
        if dep is not None:
            for c in range(self.nclasses):
                for m in self.depot_mags(dep[c]):
                    n[c] += int(self.mem.value(m, "struct mm_mag")["count"])
        return n

    def where_in_magazines(self, c, addr):
        for (cc, cpu, which), m in self.cpu_slots().items():
            if cc == c and addr in self.mag_objects(m):
                return "CPU %d's %s magazine 0x%x" % (cpu, which, m)
        dep = self.class_depots()
        if dep is not None:
            for m in self.depot_mags(dep[c]):
                if addr in self.mag_objects(m):
                    return "a full magazine 0x%x in class %d's depot" % (m, c)
        return None

    # ---- statistics: kmalloc_get_stats() from memory ----
    def stats(self):
        st = {"cls": [{"pools": 0, "full": 0, "used": 0, "avail": 0}
                      for _ in range(self.nclasses)],
              "unused_pools": 0, "bytes_unused": 0, "bytes_headers": 0,
              "bytes_alloc": 0, "bytes_avail": 0, "bytes_quant": 0, "spare": 0}
        for a in self.arenas:
            used = 0
            psize = self.arena_pool_size(a)
            for i in range(a["npools"]):
                hdr0 = self.hdr0 if i == 0 else 0
                if not self.pool_in_use(a, i):
                    st["unused_pools"] += 1
                    st["bytes_unused"] += psize - hdr0
                    st["bytes_headers"] += hdr0
                    continue
                p = self.pool(self.pool_at(a, i))
                k = self.cls[p["cls"]]
                cs = st["cls"][p["cls"]]
                cap = self.capacity(p)
                cs["pools"] += 1
                cs["full"] += p["freeblock"] == 0
                cs["used"] += p["ref"]
                cs["avail"] += cap - p["ref"]
                st["bytes_alloc"] += p["ref"] * k["size"]
                st["bytes_avail"] += (cap - p["ref"]) * k["size"]
                st["bytes_headers"] += p["first"]
                st["bytes_quant"] += psize - p["first"] - cap * k["size"]
                used += p["ref"]
            st["spare"] += used == 0
        return st

    def pool_token(self, a, i):
        """heapdump.c's pool_token(): '.', '-' or SIZE:USED/CAP."""
        if i >= a["nextpool"]:
            return "."
        if not self.pool_in_use(a, i):
            return "-"
        p = self.pool(self.pool_at(a, i))
        if p["cls"] >= self.nclasses:
            return "-"
        return "%d:%d/%d" % (self.cls[p["cls"]]["size"], p["ref"], self.capacity(p))

    def tokens(self, a):
        out, prev, times = [], None, 0
        for i in range(a["npools"]):
            t = self.pool_token(a, i)
            if t == prev:
                times += 1
                continue
            if prev is not None:
                out.append(prev + ("*%d" % times if times > 1 else ""))
            prev, times = t, 1
        out.append(prev + ("*%d" % times if times > 1 else ""))
        return " ".join(out)


def large_state(mem):
    v = try_value(mem, "'large.c'::large")
    if v is None:
        raise StrataError("cannot read large.c's state ('large.c'::large)")
    return {n: u64(v[n]) for n in ("runs", "pages", "requested", "cached_pages",
                                   "pfa_allocs", "pfa_frees")}


def stat_line(label, v):
    return "%-35s= %20s" % (label, commas(v))


def cmd_pools(arg):
    mem = Mem()
    p = PFA(mem)
    h = ObjHeap(mem, p)
    st = h.stats()
    if h.arenas:
        print("pools: %d arenas of %d bytes, %d pools of %d bytes each (small classes; "
              "fewer, bigger ones for medium), %d size classes"
              % (len(h.arenas), h.arena_size, h.arena_pools, h.pool_size, h.nclasses))
    else:
        print("pools: no arenas yet (%d size classes%s)"
              % (h.nclasses, "" if h.nclasses else ": kmalloc_init() has not run"))
    for a in h.arenas:
        inuse = sum(h.pool_in_use(a, i) for i in range(a["npools"]))
        print("arena 0x%x (phys 0x%x): carved=%d nfree=%d state=%s pool=%d, "
              "%d pools in use, %d free"
              % (a["base"], a["pa"], a["nextpool"], a["nfreepools"], h.state(a),
                 h.arena_pool_size(a), inuse, a["npools"] - inuse))
        print("  pools %s" % h.tokens(a))
    print("class   size   num pools   blocks in use  avail blocks   full pools  pool KiB")
    print("-----   ----   ---------   -------------  ------------   ----------  --------")
    for c in range(h.nclasses):
        cs = st["cls"][c]
        if cs["pools"]:
            print("%5d %6d %11d %15d %13d %12d %9d" % (c, h.cls[c]["size"], cs["pools"],
                                                       cs["used"], cs["avail"], cs["full"],
                                                       h.cls[c]["pool_size"] >> 10))
    av = h.arenas_v
    cached = h.percpu_cached()
    cached_bytes = sum(n * h.cls[c]["size"] for c, n in enumerate(cached))
    internal = try_value(mem, "'percpu.c'::internal_bytes")
    lg = large_state(mem)
    cur = u64(av["current"])
    lines = [("# arenas allocated total", u64(av["allocated_total"])),
             ("# arenas reclaimed", u64(av["reclaimed_total"])),
             ("# arenas highwater mark", u64(av["highwater"])),
             ("# arenas allocated current", cur),
             ("# arenas kept back unused", st["spare"]),
             ("%d arenas * %d bytes/arena" % (cur, h.arena_size), cur * h.arena_size),
             None,
             ("# bytes in allocated blocks", st["bytes_alloc"]),
             ("#   of which free in per-CPU magazines", cached_bytes)]
    if internal is not None:
        lines.append(("#   of which magazines and per-CPU areas", u64(internal)))
    total = (st["bytes_alloc"] + st["bytes_avail"] + st["bytes_unused"] +
             st["bytes_headers"] + st["bytes_quant"])
    lines += [("# bytes in available blocks", st["bytes_avail"]),
              ("# bytes in %d unused pools" % st["unused_pools"], st["bytes_unused"]),
              ("# bytes lost to pool headers", st["bytes_headers"]),
              ("# bytes lost to quantization", st["bytes_quant"]),
              ("Total", total), None,
              ("# large runs", lg["runs"]),
              ("%d large pages * %d bytes" % (lg["pages"], 1 << PAGE_SHIFT),
               lg["pages"] << PAGE_SHIFT),
              ("# bytes requested in large runs", lg["requested"]),
              ("# bytes lost to page rounding", (lg["pages"] << PAGE_SHIFT) - lg["requested"]),
              ("# pages held from the PFA",
               cur * (h.arena_size >> PAGE_SHIFT) + lg["pages"] + lg["cached_pages"]),
              None,
              ("# PFA blocks taken by kmalloc", u64(av["pfa_allocs"]) + lg["pfa_allocs"]),
              ("# PFA blocks given back", u64(av["pfa_frees"]) + lg["pfa_frees"])]
    print()
    for ln in lines:
        print("" if ln is None else stat_line(*ln))


# ---------------------------------------------------------------- caches

def caches(mem):
    """Every struct kmem_cache, as (address, gdb.Value), on slab.c's list."""
    head = try_value(mem, "'slab.c'::caches")
    out, c = [], u64(head) if head is not None else 0
    t = gdb.lookup_type("struct kmem_cache")
    while c and len(out) < 4096:
        v = mem.value(c, t)
        out.append((c, v))
        c = u64(v["next"])
    return out


def cache_magazines(h, v):
    """{'cpuN loaded'|'cpuN prev'|'depot': [objects]} of cache v."""
    out = {}
    for cpu in range(array_len(v["cpu"])):
        for which in ("loaded", "prev"):
            m = u64(v["cpu"][cpu][which])
            objs = h.mag_objects(m) if m else []
            if objs:
                out["cpu%d %s" % (cpu, which)] = objs
    dep = []
    for m in h.depot_mags(v["depot"]):
        dep += h.mag_objects(m)
    if dep:
        out["depot"] = dep
    return out


def slab_lists(mem, v):
    """[(list number, slab address, header dict)] of cache v."""
    lay = layout("struct kmem_slab")
    out = []
    for l in range(array_len(v["list"])):
        s, n = u64(v["list"][l]), 0
        while s and n < 1 << 20:
            hd = lay.unpack(mem.read(s, lay.size))
            out.append((l, s, hd))
            s, n = hd["next"], n + 1
    return out


def cmd_slabinfo(arg):
    mem = Mem()
    p = PFA(mem)
    h = ObjHeap(mem, p)
    print("# slabinfo: name              active    total  objsize  stride "
          "objperslab pagesperslab   slabs (partial/full/empty)  depot   cpu  in use")
    for _, v in caches(mem):
        nslabs = [u64(v["nslabs"][i]) for i in range(array_len(v["nslabs"]))]
        mags = cache_magazines(h, v)
        depot = len(mags.get("depot", []))
        cpu = sum(len(o) for k, o in mags.items() if k != "depot")
        total = sum(nslabs) * int(v["nobjs"])
        active = u64(v["objs_in_slabs"])
        print("%-24s %8d %8d %8d %7d %10d %12d %7d (%d/%d/%d) %6d %5d %7d"
              % (v["name"].string(), active, total, u64(v["size"]), u64(v["stride"]),
                 int(v["nobjs"]), 1 << int(v["order"]), sum(nslabs), nslabs[0], nslabs[1],
                 nslabs[2], depot, cpu, active - depot - cpu))
        for k, objs in sorted(mags.items()):
            print("  %s magazine: %d objects" % (k, len(objs)))


# ---------------------------------------------------------------- whatis

def symbolize(pc):
    """'function+off (file:line)' for a code address."""
    try:
        blk = gdb.block_for_pc(pc)
        fn = blk.function if blk else None
        while blk and not fn:
            blk = blk.superblock
            fn = blk.function if blk else None
        name = "%s+%d" % (fn.name, pc - blk.start) if fn else "0x%x" % pc
        sal = gdb.find_pc_line(pc - 1)
        if sal.symtab:
            name += " (%s:%d)" % (sal.symtab.filename, sal.line)
        return name
    except (RuntimeError, gdb.error):
        return "0x%x" % pc


def mix(x):
    """trace.c's mix()."""
    x ^= x >> 33
    x = (x * 0xff51afd7ed558ccd) & MASK64
    x ^= x >> 33
    return x


def trace_site(mem, ptr):
    """The allocation site tracemalloc recorded for ptr: (size, [frames])
    or None (tracing off, or ptr not traced)."""
    tr = try_value(mem, "'trace.c'::tr")
    if tr is None or not u64(tr["traces"]):
        return None
    lay = layout("struct trace")
    ntraces = (1 << (PAGE_SHIFT + TRACES_ORDER)) // lay.size
    base = u64(tr["traces"])
    i = mix(ptr) & (ntraces - 1)
    for _ in range(ntraces):
        t = lay.unpack(mem.read(base + i * lay.size, lay.size))
        if t["ptr"] == 0:
            return None
        if t["ptr"] == ptr:
            st = mem.value(u64(tr["sites"]) + t["site"] * gdb.lookup_type(
                "struct mm_trace_stat").sizeof, "struct mm_trace_stat")
            frames = [u64(st["frames"][k]) for k in range(array_len(st["frames"]))]
            return t["size"], [f for f in frames if f]
        i = (i + 1) & (ntraces - 1)
    return None


def site_text(mem, ptr):
    s = trace_site(mem, ptr)
    if s is None:
        return ""
    size, frames = s
    return ("\n  allocated by (tracemalloc, %d bytes asked for): " % size +
            "\n    <- ".join(symbolize(f) for f in frames))


def debug_header(mem, blk):
    """(state, dict) if the kmalloc block at blk is a debug block (debug.c's
    struct dbg_hdr at its start, magic live or dead), else None."""
    try:
        t = gdb.lookup_type("struct dbg_hdr")
    except gdb.error:
        return None
    v = mem.value(blk, t)
    magic = u64(v["magic"])
    state = "live" if magic == blk ^ DBG_LIVE else "dead" if magic == blk ^ DBG_DEAD else None
    if state is None:
        return None
    # the data's offset from the header: debug.c's off word without its
    # flag bits (a large block's data ends against its guard page), or
    # the fixed prefix in a build whose header has no such word
    names = [f.name for f in t.fields()]
    off = u64(v["off"]) & ~0xf if "off" in names else 0
    return state, {"size": u64(v["size"]), "alloc": u64(v["alloc_site"]),
                   "free": u64(v["free_site"]),
                   "data": blk + (off if off else t.sizeof + DBG_LEFT)}


def in_quarantine(mem, hdr):
    d = try_value(mem, "'debug.c'::dbg")
    if d is None:
        return None
    h, n = u64(d["q_head"]), 0
    while h and n <= u64(d["q_count"]):
        if h == hdr:
            return n
        h = u64(mem.value(h, "struct dbg_hdr")["next"])
        n += 1
    return None


def whatis_arena(mem, p, pa, what):
    h = ObjHeap(mem, p)
    va = p.virt(pa)
    head = what["head"]
    arena_base = p.virt(p.phys(head))
    dist = what["idx"] - head
    arena = next((a for a in h.arenas if a["base"] == arena_base), None)
    shift = arena["pool_shift"] if arena else (h.pool_size.bit_length() - 1)
    i = dist >> (shift - PAGE_SHIFT)
    pool = arena_base + (i << shift)
    where = "arena 0x%x (phys 0x%x%s)" % (arena_base, p.phys(head),
                                        ", " + h.state(arena) if arena else ", NOT on arenas.all")
    if not arena or not h.pool_in_use(arena, i):
        carved = arena and i < arena["nextpool"]
        return ("0x%x: kmalloc arena memory, pool %d at 0x%x, %s; %s"
                % (va, i, pool, "empty (on the free-pool list)" if carved else
                   "never carved", where))
    ph = h.pool(pool)
    if ph["cls"] >= h.nclasses:
        return ("0x%x: in pool 0x%x, whose header says class %d of %d (damaged: strata check)"
                % (va, pool, ph["cls"], h.nclasses))
    k = h.cls[ph["cls"]]
    off = va - pool
    if off < ph["first"]:
        return ("0x%x: header of pool 0x%x (class %d)%s, %s"
                % (va, pool, ph["cls"], " and of its arena" if i == 0 else "", where))
    bi = (off - ph["first"]) // k["size"]
    blk = pool + ph["first"] + bi * k["size"]
    if off >= ph["first"] + ph["carved"]:
        state = "never carved (past offset %d)" % (ph["first"] + ph["carved"])
    else:
        state = None
    out = ("0x%x: kmalloc block 0x%x + %d: class %d (%d-byte blocks), block %d of pool 0x%x "
           "(%d/%d used), %s" % (va, blk, va - blk, ph["cls"], k["size"], bi, pool,
                                 ph["ref"], h.capacity(ph), where))
    if state:
        return out + "\n  " + state
    mark = mem.u64(blk + h.block_lay.off("mark"))
    if mark == blk ^ KM_FREE_MAGIC:
        state = ("free, on its pool's free list" if blk in h.free_list(ph, [], "whatis") else
                 "carries the free mark but is not on its pool's free list "
                 "(allocated, or the list is broken: strata check)")
    elif mark == blk ^ KM_MAG_MAGIC:
        m = h.where_in_magazines(ph["cls"], blk)
        state = ("free, in %s" % m) if m else \
            "free-in-magazine mark, but in no magazine (stale mark?)"
    else:
        return out + "\n  " + allocated_text(mem, blk)
    return out + "\n  " + state


def allocated_text(mem, blk):
    """What an allocated kmalloc block (small block or large run) at blk
    is: a debug block (live, or freed and in the quarantine), and where it
    was allocated if debug.c (mm.debug=U) or tracemalloc recorded it."""
    dh = debug_header(mem, blk)
    if not dh:
        return "allocated" + site_text(mem, blk)
    st, d = dh
    by = ", allocated by " + symbolize(d["alloc"]) if d["alloc"] else ""
    if st == "live":
        return ("allocated (debug block: data 0x%x, %d bytes asked for%s)"
                % (d["data"], d["size"], by)) + site_text(mem, d["data"])
    q = in_quarantine(mem, blk)
    state = ("freed, in the debug quarantine (entry %d of the FIFO)" % q
             if q is not None else "freed debug block, not in the quarantine")
    return state + " (data 0x%x, %d bytes asked for%s%s)" % (
        d["data"], d["size"], by, ", freed by " + symbolize(d["free"]) if d["free"] else "")


def whatis_large(mem, p, pa, what):
    va = p.virt(pa)
    head, dh = what["head"], what["desc"]
    if dh["owner"] == p.owner["PG_PFA"]:
        if dh["cls"] != LARGE_CONT:
            return None
        head -= dh["next"]                 # further block: distance to the run's head
        dh = p.desc(head)
        if dh["owner"] != p.owner["PG_LARGE"]:
            return None
    start = p.virt(p.phys(head))
    cached = dh["cls"] == LARGE_CACHED
    return ("0x%x: large run 0x%x + %d: %d pages, %d bytes asked for\n  %s"
            % (va, start, va - start, dh["data"], dh["next"],
               "free, kept in the run cache" if cached else allocated_text(mem, start)))


def whatis_cache(mem, p, pa, what):
    va = p.virt(pa)
    slab = p.virt(p.phys(what["head"]))
    s = layout("struct kmem_slab").unpack(mem.read(slab, layout("struct kmem_slab").size))
    if s["magic"] != slab ^ SLAB_MAGIC:
        return "0x%x: PG_CACHE page, but slab 0x%x has a bad header" % (va, slab)
    v = mem.value(s["cache"], "struct kmem_cache")
    first, stride, nobjs = int(v["first"]), u64(v["stride"]), int(v["nobjs"])
    rz = int(v["rz"])
    name = v["name"].string()
    rel = va - slab - (first - rz)
    if rel < 0 or rel >= nobjs * stride:
        return "0x%x: header of slab 0x%x of cache \"%s\"" % (va, slab, name)
    i = rel // stride
    obj = slab + first + i * stride
    bm_off = layout("struct kmem_slab").size
    word = mem.u64(slab + bm_off + (i // 64) * 8)
    if (word >> (i % 64)) & 1:
        state = "free in its slab"
    else:
        h = ObjHeap(mem, p)
        where = next((k for k, objs in cache_magazines(h, v).items() if obj in objs), None)
        state = ("free, in the %s magazine" % where if where and where != "depot" else
                 "free, in a full magazine of the cache's depot" if where else "allocated")
    return ("0x%x: object %d of cache \"%s\" (kmem_cache 0x%x), object 0x%x + %d, "
            "%d-byte objects, slab 0x%x (%d of %d handed out)\n  %s"
            % (va, i, name, s["cache"], obj, va - obj, u64(v["size"]), slab, s["inuse"],
               nobjs, state))


def whatis_pfa_raw(mem, p, pa, what):
    big = whatis_large(mem, p, pa, what)
    if big:
        return big
    tr = try_value(mem, "'trace.c'::tr")
    head_pa = p.phys(what["head"])
    dh = what["desc"]
    user = ""
    if tr is not None and head_pa in (u64(tr["sites_pa"]), u64(tr["traces_pa"])):
        user = ", tracemalloc's %s table" % ("sites" if head_pa == u64(tr["sites_pa"])
                                             else "traces")
    return ("0x%x: page-allocator block 0x%x (order %d, %d pages), allocated with "
            "pfa_alloc, no layer above claims it%s"
            % (pa, head_pa, dh["order"], 1 << dh["order"], user))


WHATIS_BY_OWNER.update({"PG_ARENA": [whatis_arena], "PG_LARGE": [whatis_large],
                        "PG_CACHE": [whatis_cache], "PG_PFA": [whatis_pfa_raw]})


# ---------------------------------------------------------------- check

def check_pools(mem, problems):
    """kmalloc_check() (mm/pool_check.c) from memory: every carved pool's
    header, free list (links decoded, inside the pool, marked free) and
    counts; every arena's free-pool list and counts; the class lists; the
    bucket bitmap.  Returns the pools checked."""
    p = PFA(mem)
    h = ObjHeap(mem, p)
    n, nonfull = 0, 0
    if len(h.arenas) != h.current:
        problems.append("pools: %d arenas on arenas.all, arenas.current says %d"
                        % (len(h.arenas), h.current))
    for a in h.arenas:
        used, listed = 0, 0
        for i in range(a["nextpool"]):
            if not h.pool_in_use(a, i):
                continue
            used += 1
            n += 1
            ph = h.pool(h.pool_at(a, i))
            nonfull += ph["freeblock"] != 0
            check_pool(h, a, i, ph, problems)
        fp = a["freepools"]
        while fp:
            idx = h.pool(fp)["index"] if (fp - a["base"]) & MASK64 < h.arena_size else -1
            if idx < 0 or idx >= a["nextpool"] or h.pool_in_use(a, idx) or listed >= a["nextpool"]:
                problems.append("pools: arena 0x%x: bad free pool 0x%x" % (a["base"], fp))
                break
            listed += 1
            fp = h.pool(fp)["next"]
        if used + listed != a["nextpool"] or a["nfreepools"] != a["npools"] - used:
            problems.append("pools: arena 0x%x: %d used + %d free != %d carved, nfreepools %d"
                            % (a["base"], used, listed, a["nextpool"], a["nfreepools"]))
    listed = 0
    for c in range(h.nclasses):
        q, prev, steps = h.usedpools[c], 0, 0
        while q and steps <= n:
            ph = h.pool(q)
            if ph["cls"] != c or not ph["freeblock"] or ph["prev"] != prev:
                problems.append("pools: usedpools[%d]: bad pool 0x%x (class %d, freeblock 0x%x, "
                                "prev 0x%x, expected 0x%x)" % (c, q, ph["cls"], ph["freeblock"],
                                                               ph["prev"], prev))
                break
            listed += 1
            prev, q, steps = q, ph["next"], steps + 1
    if listed != nonfull:
        problems.append("pools: %d pools on usedpools, %d pools with a free block"
                        % (listed, nonfull))
    for t in range(h.kinds):
        bm = h.arenas_v["bucket_map"][t]
        for k in range(h.arena_pools + 1):
            bit = (u64(bm[k // 64]) >> (k % 64)) & 1
            if bool(u64(h.arenas_v["bucket"][t][k])) != bool(bit):
                problems.append("pools: bucket %d of kind %d and its bitmap bit disagree"
                                % (k, t))
    return n


def check_pool(h, a, i, ph, problems):
    base = ph["addr"]
    if ph["arena"] != a["addr"] or ph["index"] != i:
        problems.append("pools: pool 0x%x: arena 0x%x index %d, expected 0x%x %d"
                        % (base, ph["arena"], ph["index"], a["addr"], i))
    if ph["cls"] >= h.nclasses:
        problems.append("pools: pool 0x%x: class %d" % (base, ph["cls"]))
        return
    if ph["live"] == 2:                 # cut off after a corrupted free list (pool.c)
        return
    k = h.cls[ph["cls"]]
    cap = (k["pool_size"] - ph["first"]) // k["size"]
    span = ph["carved"]
    carved = span // k["size"]
    if (ph["first"] != (k["first"] if i else k["first0"]) or carved > cap or
            ph["ref"] > carved or span % k["size"]):
        problems.append("pools: pool 0x%x: first %d carved %d ref %d cap %d"
                        % (base, ph["first"], ph["carved"], ph["ref"], cap))
        return
    before = len(problems)
    free = h.free_list(ph, problems, "pools")
    if len(problems) > before:
        return
    if len(free) + ph["ref"] != carved:
        problems.append("pools: pool 0x%x (class %d): %d free + %d used != %d carved"
                        % (base, ph["cls"], len(free), ph["ref"], carved))
    if (ph["freeblock"] == 0) != (ph["ref"] == cap):
        problems.append("pools: pool 0x%x: freeblock 0x%x with %d of %d used"
                        % (base, ph["freeblock"], ph["ref"], cap))
    pidx = h.pfa.idx_of((a["pa"] + (i << a["pool_shift"])) & MASK64)
    for j in range(k["pool_pages"]):
        d = h.pfa.desc(pidx + j)
        if d["cls"] != ph["cls"] + 1:
            problems.append("pools: pool 0x%x: page %d descriptor %s/cls %d/data %d"
                            % (base, j, owner_name(d["owner"]), d["cls"], d["data"]))


CHECKS.append(("pools", check_pools))

def check_magazines(mem, problems):
    """Every object in a magazine (each CPU's loaded and prev, each depot's
    full ones), of the kmalloc classes and of every kmem cache: a free
    block or object of its class or cache, where alloc would hand it out
    (mm/percpu.c, mm/slab.c), and no magazine over its capacity.  Returns
    the entries checked."""
    p = PFA(mem)
    h = ObjHeap(mem, p)
    n = 0
    mags = [("class %d: %s" % (c, "CPU %d's %s magazine" % (cpu, which)), c, m)
            for (c, cpu, which), m in sorted(h.cpu_slots().items())]
    dep = h.class_depots()
    if dep is not None:
        for c in range(h.nclasses):
            mags += [("class %d: depot magazine" % c, c, m) for m in h.depot_mags(dep[c])]
    for where, c, m in mags:
        v = mem.value(m, "struct mm_mag")
        if int(v["count"]) > int(v["cap"]):
            problems.append("magazines: %s 0x%x holds %d, cap %d"
                            % (where, m, int(v["count"]), int(v["cap"])))
        for i, b in enumerate(h.mag_objects(m)):
            n += 1
            why = magazine_block_problem(mem, p, h, c, b)
            if why:
                problems.append("magazines: %s 0x%x entry %d: 0x%x %s" % (where, m, i, b, why))
    for addr, v in caches(mem):
        name = v["name"].string()
        for where, objs in sorted(cache_magazines(h, v).items()):
            for i, o in enumerate(objs):
                n += 1
                why = cache_object_problem(mem, p, addr, v, o)
                if why:
                    problems.append("magazines: cache \"%s\" %s magazine entry %d: 0x%x %s"
                                    % (name, where, i, o, why))
    return n


def magazine_block_problem(mem, p, h, c, b):
    """Why block b cannot sit in a magazine of class c (None: it can)."""
    idx = p.idx_of((b - p.offset) & MASK64)
    if idx is None:
        return "is not in RAM strata manages"
    psize = h.cls[c]["pool_size"] if c < h.nclasses else h.pool_size
    pool = b & ~(psize - 1)          # medium pools: aligned in the arena, and so in the map
    layer, _ = whatis_page(p, (pool - p.offset) & MASK64)
    if layer != "PG_ARENA" or p.desc(idx)["cls"] == 0:
        return "is not in a pool in use"
    ph = h.pool(pool)
    if ph["cls"] != c:
        return "is in pool 0x%x of class %d" % (pool, ph["cls"])
    rel = b - pool - ph["first"]
    if rel < 0 or rel >= ph["carved"] or rel % h.cls[c]["size"]:
        return "is not a carved block boundary of pool 0x%x" % pool
    mark = mem.u64(b + h.block_lay.off("mark"))
    if mark != b ^ KM_MAG_MAGIC:
        return "does not carry the magazine mark (0x%x)" % mark
    return None


def cache_object_problem(mem, p, cache, v, o):
    """Why object o cannot sit in a magazine of cache v (None: it can)."""
    idx = p.idx_of((o - p.offset) & MASK64)
    if idx is None:
        return "is not in RAM strata manages"
    layer, what = whatis_page(p, (o - p.offset) & MASK64)
    if layer != "PG_CACHE":
        return "is not in a slab (%s)" % layer
    slab = p.virt(p.phys(what["head"]))
    lay = layout("struct kmem_slab")
    s = lay.unpack(mem.read(slab, lay.size))
    if s["magic"] != slab ^ SLAB_MAGIC or s["cache"] != cache:
        return "is in slab 0x%x of another cache (or a bad one)" % slab
    rel = o - slab - int(v["first"])
    stride = u64(v["stride"])
    if rel < 0 or rel % stride or rel // stride >= int(v["nobjs"]):
        return "is not an object boundary of slab 0x%x" % slab
    i = rel // stride
    if (mem.u64(slab + lay.size + (i // 64) * 8) >> (i % 64)) & 1:
        return "is free in its slab's bitmap too (object %d)" % i
    return None


CHECKS.append(("magazines", check_magazines))



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
    "pools": (cmd_pools, "arenas, pools per size class and their fullness, the byte books"),
    "slabinfo": (cmd_slabinfo, "one line per kmem_cache: objects, slabs, magazines"),
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
