#!/usr/bin/env python3
"""tests/fuzz/gen-corpus.py - write the seed corpus of fuzz_kmalloc.c.

    tests/fuzz/gen-corpus.py [DIR]      (default: tests/fuzz/corpus)

Each seed is a small hand-made operation sequence in the harness's input
format (see the comment at the top of fuzz_kmalloc.c): a header byte, then
opcode bytes (index into its optable[]) each followed by its arguments.
The opcode values below must match optable[] there.
"""
import os
import struct
import sys

# first index of each operation in fuzz_kmalloc.c's optable[]
KMALLOC, KZALLOC, KCALLOC, ALIGNED, REALLOC, FREE = 0, 4, 5, 6, 8, 11
REWRITE, USABLE, CACHE_CREATE, CACHE_ALLOC, CACHE_FREE = 14, 15, 16, 17, 19
CACHE_SHRINK, CACHE_DESTROY, RECLAIM, DRAIN = 20, 21, 22, 23
BAD_INTERIOR, DOUBLE_FREE, BAD_WILD, BAD_CROSS, CHECK = 24, 25, 26, 28, 29

# pick_size(): selector byte % 16, then its argument bytes
def sz_small(n):      # 1..256
    return bytes([0, (n - 1) & 0xff])

def sz_any16(n):      # 1..2048 (or up to 64 KiB with sel 10)
    return bytes([7]) + struct.pack('<H', (n - 1) % 2048)

def sz_edge(i):       # index into the edge[] table
    return bytes([13, i])

def sz_u32(n):        # anything up to 4 MiB + 1
    return bytes([12]) + struct.pack('<I', n)

EDGE = {0: 0, 1: 1, 2048: 16, 2049: 17, 4096: 19, '4M': 28, '4M+1': 29, '8M': 30,
        'max': 31}

def op(code, *args):
    out = bytes([code])
    for a in args:
        out += a if isinstance(a, bytes) else bytes([a])
    return out

def kmalloc(slot, size, zero=0):
    return op(KMALLOC, slot, size, zero)

seeds = {}

# small blocks of many sizes, freed in another order, with checks
s = b'\x00'
for i, n in enumerate([1, 16, 17, 48, 100, 256, 255, 32, 64, 200]):
    s += kmalloc(i, sz_small(n))
for i, n in enumerate([513, 700, 1024, 1500, 2048]):
    s += kmalloc(10 + i, sz_any16(n))
s += op(CHECK)
for i in [3, 0, 7, 12, 1, 14, 2]:
    s += op(FREE, i)
s += op(RECLAIM)
seeds['small-mix'] = s

# the edges: 0, 1, 2048, 2049, 4096, 4 MiB, 4 MiB + 1, 8 MiB, SIZE_MAX
s = b'\x00'
for i, e in enumerate([0, 1, 2048, 2049, 4096, '4M', '4M+1', '8M', 'max']):
    s += kmalloc(i, sz_edge(EDGE[e]))
s += op(USABLE, 0) + op(USABLE, 5) + op(CHECK)
s += op(KZALLOC, 20, sz_edge(EDGE['4M']), 0)       # 2nd 4 MiB block, zeroed
s += op(FREE, 5) + op(FREE, 20) + op(RECLAIM)
seeds['edges'] = s

# realloc: from NULL, grow, double, shrink, KM_ZERO growth, to 0
s = b'\x00'
s += op(REALLOC, 1, 2 * 4, sz_small(24))            # case 4: krealloc(NULL, 24)
s += op(REALLOC, 1, 2 * 2, 10)                      # grow a little
s += op(REALLOC, 1, 2 * 3 + 1)                      # double, KM_ZERO
s += op(REALLOC, 1, 2 * 3 + 1)
s += op(REALLOC, 1, 2 * 3)
s += op(REALLOC, 1, 2 * 3)                          # now a large run
s += op(REALLOC, 1, 2 * 1, 40)                      # shrink
s += op(REALLOC, 1, 2 * 2 + 1, 200)                 # grow, KM_ZERO
s += op(REALLOC, 1, 2 * 4, sz_u32(3 << 20))         # to 3 MiB
s += op(REALLOC, 1, 2 * 1, 2)                       # back to small
s += op(REALLOC, 1, 0)                              # to 0: freed
seeds['realloc'] = s

# kcalloc (good and overflowing), kzalloc, kmalloc_aligned good and bad
s = b'\x00'
s += op(KCALLOC, 2, sz_small(200), 0, 5)            # 6 x 34
s += op(KCALLOC, 3, sz_small(100), 0, 0)            # overflow
s += op(KCALLOC, 4, sz_any16(2000), 0, 8)           # overflow, size 2000
s += op(KZALLOC, 5, sz_small(77), 0)
for i, a in enumerate([5, 7, 11, 15, 16, 17, 19, 20, 21, 22, 23, 24]):
    s += op(ALIGNED, 6 + i, sz_small(40 + i), a, i & 1)
s += op(ALIGNED, 30, sz_any16(3000), 16, 1)         # 2 MiB aligned, zeroed
s += op(CHECK)
seeds['calloc-aligned'] = s

# caches: with and without constructor, alloc/free/shrink/destroy (live)
s = b'\x00'
s += op(CACHE_CREATE, 0, 3, 0, 4)                   # 12 bytes, ctor
s += op(CACHE_CREATE, 1, 7, 6, 1)                   # 192 bytes, align 64, HWCACHE
s += op(CACHE_CREATE, 2, 13, 0, 6)                  # 12 KiB, ctor, no per-CPU
s += op(CACHE_CREATE, 3, 17, 9, 0)                  # size 0, align 3: fails
for i in range(12):
    s += op(CACHE_ALLOC, i % 3, 32 + i, 4 if i == 5 else 1)
s += op(CACHE_FREE, 33) + op(CACHE_FREE, 36) + op(CACHE_SHRINK, 0)
s += op(CACHE_DESTROY, 1, 0)                        # live objects: refused
s += op(CACHE_DESTROY, 1, 1)                        # free them, destroy
s += op(CACHE_ALLOC, 0, 50, 0) + op(RECLAIM) + op(CHECK)
seeds['caches'] = s

# bad frees: interior, double, wild, wrong cache, kmalloc block to a cache
s = b'\x00'
s += kmalloc(0, sz_small(64)) + kmalloc(1, sz_edge(EDGE[4096]))
s += op(CACHE_CREATE, 0, 5, 0, 0) + op(CACHE_CREATE, 1, 6, 0, 4)
s += op(CACHE_ALLOC, 0, 2, 1) + op(CACHE_ALLOC, 1, 3, 1)
s += op(BAD_INTERIOR, 0, struct.pack('<I', 8), 0)
s += op(BAD_INTERIOR, 1, struct.pack('<I', 4096), 2)
s += op(BAD_INTERIOR, 2, struct.pack('<I', 3), 0)
s += op(BAD_INTERIOR, 3, struct.pack('<I', 1), 4)
for k in range(7):
    s += op(BAD_WILD, k, k * 16 + (8 if k & 1 else 0), struct.pack('<I', 0x12345 * (k + 1)))
s += op(BAD_CROSS, 2, 0) + op(BAD_CROSS, 3, 1) + op(BAD_CROSS, 0, 0)
s += op(DOUBLE_FREE, 0, 1) + op(DOUBLE_FREE, 1, 0) + op(DOUBLE_FREE, 2, 0)
s += op(CHECK)
seeds['bad-frees'] = s

# the same churn with the per-CPU magazines off (header bit 0)
s = b'\x01'
for r in range(3):
    for i in range(8):
        s += kmalloc(i, sz_small(1 + 31 * i))
    s += op(DRAIN)
    for i in range(0, 8, 2):
        s += op(FREE, i)
    s += op(DOUBLE_FREE, 1, 1)
s += op(RECLAIM)
seeds['percpu-off'] = s

# many blocks of one class, freed and reused (magazine swaps, depot)
s = b'\x00'
for rnd in range(2):
    for i in range(60):
        s += kmalloc(i, sz_small(32))
    for i in range(60):
        s += op(FREE, i)
    s += op(DRAIN)
seeds['churn'] = s

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus')
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)
print(f"gen-corpus: {len(seeds)} seeds in {out}")
