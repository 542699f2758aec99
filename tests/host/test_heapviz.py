#!/usr/bin/env python3
"""test_heapviz.py - scripts/heapviz on real and made-up heap dumps.

    python3 tests/host/test_heapviz.py          (stdlib unittest; -v for names)

The real dump is the console of `make run` on x86_64 (512 MiB, the demo's
4000 objects live), with the serial line's CR LF endings and the lines
around it, as heapviz reads it from build/x86_64/run.log.  If
HEAPDUMP_OUT names a dump written by build/host/tests/test_heapdump it is
drawn as well.  Every SVG must parse as XML and hold what the dump says:
one cell per pool, a rect per large run, the cross-checks passed.
"""
import os
import re
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
HEAPVIZ = os.path.join(HERE, '..', '..', 'scripts', 'heapviz')
NS = '{http://www.w3.org/2000/svg}'

QEMU_LOG = """
pfa free pages: 130217 before, 129616 with the objects live

-- heap dump (scripts/heapviz draws it) --
strata-heap v1 page=4096 pool=16384 arena=1048576 pools=64 maxorder=10 classes=48 small_max=2048
class 0 16 1021 1017
class 1 32 510 508
class 2 48 340 339
class 3 64 255 254
class 4 80 204 203
class 5 96 170 169
class 6 112 145 145
class 7 128 127 127
class 8 144 113 113
class 9 160 102 101
class 10 176 92 92
class 11 192 85 84
class 12 208 78 78
class 13 224 72 72
class 14 240 68 67
class 15 256 63 63
class 16 272 60 59
class 17 288 56 56
class 18 304 53 53
class 19 320 51 50
class 20 336 48 48
class 21 352 46 46
class 22 368 44 44
class 23 384 42 42
class 24 400 40 40
class 25 416 39 39
class 26 432 37 37
class 27 448 36 36
class 28 464 35 35
class 29 480 34 33
class 30 496 32 32
class 31 512 31 31
class 32 576 28 28
class 33 640 25 25
class 34 704 23 23
class 35 768 21 21
class 36 832 19 19
class 37 896 18 18
class 38 960 17 16
class 39 1024 15 15
class 40 1152 14 14
class 41 1280 12 12
class 42 1408 11 11
class 43 1536 10 10
class 44 1664 9 9
class 45 1792 9 9
class 46 1920 8 8
class 47 2048 7 7
region 0x0 0x9f000
region 0x100000 0x1fee0000
totals pages=130943 free=129616 reserved=726 meta_bytes=2105344 arenas=2 large_runs=29 large_pages=89 large_req=306439
reserved 0x0 3
large 0x3000 1 req=2095
large 0x4000 4 req=12887
large 0x8000 4 req=13887
large 0xc000 4 req=14087
large 0x10000 4 req=14887
large 0x14000 4 req=15087
large 0x18000 4 req=15287
large 0x1c000 4 req=15487
free 0x20000 32 order=5 n=1
free 0x40000 64 order=6 n=1
large 0x80000 1 req=2051
large 0x81000 1 req=2087
large 0x82000 1 req=2083
large 0x83000 1 req=2079
large 0x84000 4 req=14287
large 0x88000 4 req=14487
large 0x8c000 4 req=14687
large 0x90000 4 req=13487
large 0x94000 4 req=13687
large 0x98000 4 req=12687
large 0x9c000 1 req=2055
large 0x9d000 1 req=2091
large 0x9e000 1 req=2059
reserved 0x100000 211
large 0x1d3000 1 req=2099
large 0x1d4000 4 req=12487
large 0x1d8000 4 req=13087
large 0x1dc000 4 req=13287
free 0x1e0000 32 order=5 n=1
arena 0x200000 256
free 0x300000 256 order=8 n=1
free 0x400000 129024 order=10 n=126
arena 0x1fc00000 256
free 0x1fd00000 128 order=7 n=1
free 0x1fd80000 64 order=6 n=1
large 0x1fdc0000 4 req=15687
large 0x1fdc4000 4 req=15887
large 0x1fdc8000 4 req=16087
large 0x1fdcc000 4 req=16287
free 0x1fdd0000 16 order=4 n=1
meta 0x1fde0000 512
pools 0x200000 carved=48 nfree=16 state=live 288:56/56 304:53/53 512:31/31 1152:10/14 1408:11/11 480:34/34 224:48/72 272:60/60 240:67/68 1920:8/8 416:39/39 448:36/36 1536:10/10 496:32/32 464:35/35 208:57/78 384:42/42 256:41/63 192:35/85 432:37/37 2048:7/7 352:40/46 400:40/40 1280:6/12 512:31/31 176:43/92 320:28/51 368:33/44 160:18/102 480:24/34 336:24/48 496:24/32 1664:4/9 144:22/113 448:18/36 464:12/35 1920:4/8 304:24/53 1536:1/10 432:6/37 416:13/39 1792:2/9 2048:1/7 288:14/56 272:15/60 512:4/31 1408:2/11 384:6/42 .*16
pools 0x1fc00000 carved=64 nfree=0 state=live 1024:13/15 256:63/63 16:15/1021 480:34/34 448:36/36 416:39/39 384:42/42 352:46/46 320:51/51 288:56/56 224:72/72 192:85/85 160:102/102 128:120/127 96:120/170 64:120/255 1280:12/12 496:32/32 464:35/35 32:120/510 1792:9/9 432:37/37 400:40/40 896:10/18 368:44/44 336:48/48 1536:10/10 304:53/53 272:60/60 2048:7/7 240:68/68 208:78/78 1152:14/14 176:92/92 144:113/113 112:135/145 80:135/204 832:15/19 48:135/340 512:31/31 1408:11/11 768:15/21 1664:9/9 1920:8/8 704:12/23 960:12/17 640:6/25 256:63/63 512:31/31 464:35/35 480:34/34 416:39/39 384:42/42 496:32/32 448:36/36 352:46/46 320:51/51 432:37/37 2048:7/7 1792:9/9 400:40/40 1664:9/9 368:44/44 336:48/48
strata-heap end lines=97
heap dump: 3528 bytes
""".replace('\n', '\r\n')


def run_heapviz(text, *args):
    """(exit status, svg text or None, stderr)"""
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, 'run.log')
        out = os.path.join(tmp, 'heap.svg')
        with open(log, 'w', newline='') as f:
            f.write(text)
        p = subprocess.run([sys.executable, HEAPVIZ, log, '-o', out] + list(args),
                           capture_output=True, text=True, timeout=60)
        svg = None
        if os.path.exists(out):
            with open(out, encoding='utf-8') as f:
                svg = f.read()
        return p.returncode, svg, p.stderr


def group(root, gid):
    for g in root.iter(NS + 'g'):
        if g.get('id') == gid:
            return g
    raise AssertionError('no <g id="%s">' % gid)


def titles(elem):
    return [t.text or '' for t in elem.iter(NS + 'title')]


def texts(elem):
    return [''.join(t.itertext()) for t in elem.iter(NS + 'text')]


def dump_facts(text):
    """What the (last) dump in text says, parsed independently of heapviz."""
    lines = [l.strip() for l in text.replace('\r', '').split('\n')]
    i = max(k for k, l in enumerate(lines) if l.startswith('strata-heap v1'))
    facts = {'arenas': 0, 'large': [], 'free_pages': 0, 'pools_in_use': 0, 'pools': 0}
    arena = 1 << 20
    for l in lines[i:]:
        w = l.split()
        if not w:
            continue
        if w[0] == 'strata-heap' and ' arena=' in l:
            arena = int(re.search(r' arena=(\d+)', l).group(1))
        if w[0] == 'pools':
            facts['arenas'] += 1
            size = re.search(r' pool=(\d+)', l)   # the arena's pool size
            facts['pools'] += arena // int(size.group(1)) if size else 64
            for tok in w[2:]:
                m = re.match(r'^\d+:\d+/\d+(?:\*(\d+))?$', tok)
                if m:
                    facts['pools_in_use'] += int(m.group(1) or 1)
        elif w[0] == 'large':
            facts['large'].append(int(w[1], 16))
        elif w[0] == 'free':
            facts['free_pages'] += int(w[2])
        elif l.startswith('strata-heap end'):
            break
    return facts


def synthetic(regions, mem, arenas, classes=((0, 16, 1021, 1017), (1, 32, 510, 508)),
              end=True, maxorder=10):
    """A made-up dump in the v1 format (mm/include/strata/heapdump.h)."""
    out = ['strata-heap v1 page=4096 pool=16384 arena=1048576 pools=64 '
           'maxorder=%d classes=%d small_max=2048' % (maxorder, len(classes))]
    out += ['class %d %d %d %d' % c for c in classes]
    out += ['region 0x%x 0x%x' % r for r in regions]
    pages = sum(s for _, s in regions) // 4096
    free = sum(int(l.split()[2]) for l in mem if l.startswith('free '))
    out.append('totals pages=%d free=%d reserved=0 meta_bytes=0 arenas=%d large_runs=0 '
               'large_pages=%d large_req=0'
               % (pages, free, len(arenas),
                  sum(int(l.split()[2]) for l in mem if l.startswith('large ')
                      and 'cached' not in l)))
    out += mem
    out += arenas
    if end:
        out.append('strata-heap end lines=%d' % (len(out) + 1))
    return '\n'.join(out) + '\n'


class RealDump(unittest.TestCase):
    def check_svg(self, text, svg):
        root = ET.fromstring(svg)
        self.assertEqual(root.tag, NS + 'svg')
        self.assertEqual(root.get('width'), '1400')
        facts = dump_facts(text)
        # one cell per pool in the arena grid
        cells = [t for t in titles(group(root, 'arenas')) if t.startswith('pool ')]
        self.assertEqual(len(cells), facts['pools'])
        in_use = [t for t in cells if '-byte blocks' in t]
        self.assertEqual(len(in_use), facts['pools_in_use'])
        # every large run has a rect in the map (a run may span two rows)
        mem_titles = titles(group(root, 'memory'))
        for base in facts['large']:
            self.assertTrue(any(t.startswith('large run') and '0x%x-' % base in t
                                for t in mem_titles), 'large run 0x%x not drawn' % base)
        # the summary's cross-checks with the dump's totals all pass
        summary = texts(group(root, 'summary'))
        checks = [s for s in summary if s[:1] in '\u2713\u2717']
        self.assertGreaterEqual(len(checks), 3)
        self.assertTrue(all(s.startswith('\u2713') for s in checks), checks)
        self.assertTrue(any(s.startswith('\u2713 free pages %s,' % format(facts['free_pages'], ','))
                            for s in checks), checks)
        # legend names the layers
        legend = ' '.join(texts(group(root, 'memory')))
        for word in ('reserved', 'page descriptors', 'arenas', 'large runs', 'not RAM'):
            self.assertIn(word, legend)
        return root

    def test_qemu_console_log(self):
        rc, svg, err = run_heapviz(QEMU_LOG)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, '')
        self.check_svg(QEMU_LOG, svg)

    def test_stdin_and_stdout(self):
        p = subprocess.run([sys.executable, HEAPVIZ, '-o', '-'], input=QEMU_LOG,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.check_svg(QEMU_LOG, p.stdout)

    def test_host_dump(self):
        path = os.environ.get('HEAPDUMP_OUT')
        if not path or not os.path.exists(path):
            self.skipTest('HEAPDUMP_OUT not set (run build/host/tests/test_heapdump first)')
        with open(path) as f:
            text = f.read()
        rc, svg, err = run_heapviz(text)
        self.assertEqual(rc, 0, err)
        self.check_svg(text, svg)

    def test_last_complete_dump_wins(self):
        first = QEMU_LOG
        cut = QEMU_LOG[:QEMU_LOG.index('pools ')]      # a second, truncated dump
        rc, out, err = run_heapviz(first + cut, '--list')
        self.assertEqual(rc, 0)
        rc, svg, err = run_heapviz(first + cut)
        self.assertEqual(rc, 0, err)
        self.check_svg(first, svg)
        rc, svg, err = run_heapviz(first + cut, '--index', '1')
        self.assertEqual(rc, 0)
        self.assertIn('truncated', err)


class MadeUpDumps(unittest.TestCase):
    def test_no_dump(self):
        rc, svg, err = run_heapviz('just a console\nno dump here\n')
        self.assertEqual(rc, 1)
        self.assertIsNone(svg)
        self.assertIn('no "strata-heap v1" dump', err)

    def test_5gib_with_holes(self):
        # RAM 0-640K, 1M-3G, 4G-6G (QEMU -m 5G on x86_64): holes collapse
        M, G = 1 << 20, 1 << 30
        regions = [(0, 0x9f000), (M, 3 * G - M), (4 * G, 2 * G)]
        mem = ['reserved 0x0 159',
               'reserved 0x100000 256',
               'arena 0x200000 256',
               'large 0x300000 3 req=12000',
               'large 0x303000 2 req=5000 cached',
               'pfa 0x305000 1 order=0 n=1',
               'cache 0x306000 2 order=1 n=1',
               'free 0x308000 2 order=1 n=1',
               'free 0x30a000 2 order=1 n=1',
               'free 0x30c000 4 order=2 n=1',
               'free 0x310000 240 order=4 n=15',
               'free 0x400000 %d order=10 n=%d' % ((3 * G - 4 * M) // 4096, (3 * G - 4 * M) // (4 * M)),
               'free 0x100000000 %d order=10 n=%d' % ((2 * G - 4 * M) // 4096, (2 * G - 4 * M) // (4 * M)),
               'meta 0x17fc00000 1024']
        arenas = ['pools 0x200000 carved=5 nfree=60 state=live 16:1021/1017 32:100/510 - '
                  '32:510/510*2 .*59']
        text = synthetic(regions, mem, arenas)
        rc, svg, err = run_heapviz(text)
        self.assertEqual(rc, 0, err)
        root = ET.fromstring(svg)
        body = ' '.join(texts(root))
        self.assertIn('no RAM 0xc0000000-0x100000000 (1 GiB)', body)
        self.assertIn('4 GiB', body)                       # axis label above 4 GiB
        mem_titles = titles(group(root, 'memory'))
        self.assertTrue(any('run cache' in t for t in mem_titles))
        self.assertTrue(any(t.startswith('cache slabs') for t in mem_titles))
        self.assertTrue(any(t.startswith('other PFA blocks') for t in mem_titles))
        # whole free rows are collapsed: the picture stays a screen or two
        self.assertLess(int(root.get('height')), 1600)
        cells = [t for t in titles(group(root, 'arenas')) if t.startswith('pool ')]
        self.assertEqual(len(cells), 64)
        self.assertEqual(sum('never carved' in t for t in cells), 59)

    def test_many_arenas_compact(self):
        arenas, mem = [], []
        for k in range(40):
            base = 0x1000000 + k * 0x100000
            mem.append('arena 0x%x 256' % base)
            arenas.append('pools 0x%x carved=64 nfree=0 state=live 32:%d/510*64' % (base, k * 12))
        mem.append('free 0x3800000 %d order=10 n=%d' % ((64 << 20) // 4096, 16))
        text = synthetic([(0x1000000, (40 << 20) + (64 << 20))], mem, arenas)
        rc, svg, err = run_heapviz(text)
        self.assertEqual(rc, 0, err)
        root = ET.fromstring(svg)
        cells = [t for t in titles(group(root, 'arenas')) if t.startswith('pool ')]
        self.assertEqual(len(cells), 40 * 64)

    def test_bad_line_count_is_reported(self):
        text = synthetic([(0x100000, 0x400000)], ['free 0x100000 1024 order=8 n=4'], [])
        text = text.replace('lines=', 'lines=1')
        rc, svg, err = run_heapviz(text)
        self.assertEqual(rc, 0)
        self.assertIn('lines', err)
        ET.fromstring(svg)


if __name__ == '__main__':
    unittest.main()
