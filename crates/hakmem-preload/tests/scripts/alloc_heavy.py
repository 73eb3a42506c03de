"""Allocation-heavy Python, deterministic output: run under glibc and under hakmem and
compare. Run with PYTHONMALLOC=malloc so that every object goes through malloc."""
import collections
import hashlib
import json
import random
import re
import sys
import threading
import zlib

random.seed(20240607)
out = []


def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


# Dicts of lists, tuples and strings of every size.
d = {}
for i in range(100_000):
    d["key%d" % i] = [str(i) * (i % 9), i * 3.5, (i, "v%d" % (i % 1000)), "x" * (i % 700)]
out.append(("dict", len(d), digest(sorted(d.items())[:1000])))

# JSON round trip of the whole thing.
s = json.dumps(d, sort_keys=True)
d2 = json.loads(s)
out.append(("json", len(s), d2["key12345"][0][:20], zlib.crc32(s.encode())))
del d2

# Sorting random strings; a Counter; deleting half.
words = ["".join(random.choice("abcdefghij") for _ in range(random.randint(1, 40))) for _ in range(50_000)]
words.sort()
c = collections.Counter(w[:3] for w in words)
out.append(("words", words[0], words[-1], c.most_common(5)))
for k in list(d)[::2]:
    del d[k]
out.append(("after delete", len(d)))

# Big integers (growing buffers).
x = 1
for i in range(1, 2500):
    x *= i
xb = x.to_bytes((x.bit_length() + 7) // 8, "little")
out.append(("factorial bits", x.bit_length(), hashlib.sha256(xb).hexdigest()[:16]))

# bytearray and list growth (realloc), regex over a big string.
b = bytearray()
for i in range(20_000):
    b += bytes((i + j) % 256 for j in range(i % 64))
text = b.hex()
out.append(("bytearray", len(b), zlib.crc32(b), len(re.findall(r"(ab|cd)[0-9]{2}", text))))

# Threads building structures and handing them to the main thread.
results = {}


def worker(n):
    rng = random.Random(n)
    acc = []
    for i in range(20_000):
        acc.append({"n": n, "i": i, "s": "%x" % rng.getrandbits(64) * (i % 5)})
        if len(acc) > 500:
            acc = acc[250:]
    results[n] = (len(acc), digest(acc[-10:]))


ts = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
for t in ts:
    t.start()
for t in ts:
    t.join()
out.append(("threads", sorted(results.items())))

for line in out:
    print(line)
print("python done", file=sys.stderr)
