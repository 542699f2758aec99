# tests/real/workload.py - CPython allocating and freeing many lists, dicts
# and strings.  Run with PYTHONMALLOC=malloc so that every object comes
# from malloc (strata under LD_PRELOAD).  Prints a checksum that must not
# depend on the allocator.  argv[1]: rounds (default 6).
import sys
import zlib

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 6
h = 0
for r in range(rounds):
    d = {}
    for i in range(40000):
        k = "key-%d-%d" % (r, i)
        d[k] = [i, str(i * 7), (i, k), {"x": i % 13}]
    lists = [list(range(i % 300)) for i in range(3000)]
    text = "".join(str(x) * (x % 5) for x in range(20000))
    words = text.split("1")
    for k in list(d)[::3]:
        del d[k]
    s = sorted(d.items(), key=lambda kv: kv[1][1])
    h = zlib.crc32(repr(s[:500]).encode(), h)
    h = zlib.crc32(repr([len(x) for x in lists]).encode(), h)
    h = zlib.crc32(("|".join(words[:1000])).encode(), h)
    h ^= len(d) + len(words) + len(text)
    del d, lists, text, words, s
print("checksum %08x" % (h & 0xffffffff))
