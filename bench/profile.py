#!/usr/bin/env python3
"""bench/profile.py DIR BYTES TARGET...: the Markdown tables of one bench/profile run.

Reads DIR/TARGET.{client,server}.data (perf record, cpu-clock, DWARF stacks) through
`perf script`, and DIR/TARGET.{client,server}.stat (perf stat -x, system-call counts). Every
sample is sorted into one cost by the rules in COSTS (first match wins) and its period (CPU
nanoseconds) is added there; tables give CPU seconds per GB (10^9 bytes) moved.
Standard library only.
"""

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

# Which end sends the body: the client, except for a download.
SENDER = {"download": "server", "download-cached": "server"}

KERNEL = "[kernel.kallsyms]"


def any_frame(frames, pattern):
    rx = re.compile(pattern)
    return any(rx.search(sym) for sym, _ in frames)


def crate_of(frames):
    """The first frame, leaf outward, that names a crate we track."""
    for sym, dso in frames:
        for name, rx in CRATES:
            if rx.search(sym):
                return name
    return "other"


CRATES = [
    ("sha2", re.compile(r"sha2::|sha256")),
    ("ring", re.compile(r"ring::|ring_core_")),
    ("rustls", re.compile(r"rustls::")),
    ("quinn-proto", re.compile(r"quinn_proto::")),
    ("quinn-udp", re.compile(r"quinn_udp::")),
    ("quinn", re.compile(r"quinn::")),
    ("tokio", re.compile(r"tokio::")),
    ("qft", re.compile(r"qft::|quic_ceiling::|quinn_reference::|membench::")),
    ("bytes", re.compile(r"bytes::")),
]


def classify(frames):
    """frames: leaf first, [(symbol, dso)]. Returns the cost this sample is counted under."""
    leaf, dso = frames[0] if frames else ("?", "?")
    if any_frame(frames, r"sha2::sha256|digest_blocks|sha256_"):
        return "SHA-256"
    # Before the kernel rules: the page faults of its new buffer are part of this cost.
    if any_frame(frames, r"Assembler.*defragment"):
        return "quinn-proto: receive reassembly copy (Assembler::defragment)"
    if any_frame(frames, r"aes_gcm|gcm_ghash|gcm_init|gcm_gmult|aes_hw_|aesni|vpaes|ring::aead|ring_core_\w*(aes|gcm)"):
        return "AES-GCM and header protection (ring)"
    if dso == KERNEL:
        if any_frame(frames, r"sys_sendmsg|sys_sendmmsg|udp_sendmsg|__sys_sendmsg"):
            return "kernel: UDP send (sendmsg; on loopback includes delivery to the receiver)"
        if any_frame(frames, r"recvmmsg|recvmsg|udp_recvmsg"):
            return "kernel: UDP receive (recvmmsg)"
        if any_frame(frames, r"epoll_wait|sys_futex|futex_|sched_yield|nanosleep|eventfd|sys_epoll_ctl"):
            return "kernel: sleep and wake-up (epoll_wait, futex, eventfd)"
        if any_frame(frames, r"sys_(p?read|p?write|readv|writev|pwritev|preadv|fsync|fdatasync|openat|close|statx|newfstat|fstat|rename|lseek|copy_file_range|sendfile)|ext4_|vfs_|filemap_"):
            return "kernel: file I/O (read, write, fsync)"
        if any_frame(frames, r"exc_page_fault|sys_mmap|sys_munmap|sys_madvise|sys_brk|sys_mprotect"):
            return "kernel: page faults, mmap"
        if any_frame(frames, r"sys_clone|sys_exit|do_exit|execve|sys_exit_group"):
            return "kernel: thread and process start and exit"
        return "kernel: other (interrupts, scheduler, timers)"
    if re.search(r"memmove|memcpy|memset|__memcmp|bcmp", leaf):
        return f"memcpy/memset (called from {crate_of(frames[1:])})"
    if re.search(r"^(malloc|free|realloc|calloc|cfree|_int_malloc|_int_free|_int_realloc|malloc_consolidate|tcache|__libc_malloc|__libc_free|unlink_chunk|alloc::alloc)", leaf) or "__rust_alloc" in leaf or "__rust_dealloc" in leaf:
        return "malloc/free"
    crate = crate_of(frames[:3])
    if crate == "tokio":
        return "tokio (scheduler, timers, channels, wake-ups)"
    if crate in ("quinn-proto",):
        return "quinn-proto (QUIC state machine, framing, pacing, ACKs)"
    if crate in ("quinn", "quinn-udp"):
        return "quinn and quinn-udp (drivers, socket calls)"
    if crate == "qft":
        return "qft / benchmark code"
    if crate == "rustls":
        return "rustls"
    if "libc" in dso or "ld-linux" in dso:
        return "libc other (syscall wrappers, locks)"
    return "other user code"


HEADER = re.compile(r"^(\S.*?)\s+(\d+)\s+\[?\d*\]?\s*[\d.]+:\s+(\d+)\s+cpu-clock")
FRAME = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)$")


def samples(data):
    """Yields (comm, tid, period_ns, frames) from `perf script`."""
    proc = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "comm,tid,time,period,event,ip,sym,dso"],
        capture_output=True,
        text=True,
        errors="replace",
    )
    comm = tid = period = None
    frames = []
    for line in proc.stdout.splitlines() + [""]:
        if not line.strip():
            if comm is not None:
                yield comm, tid, period, frames
            comm, frames = None, []
            continue
        m = HEADER.match(line)
        if m:
            comm, tid, period = m.group(1), int(m.group(2)), int(m.group(3))
            continue
        m = FRAME.match(line)
        if m and comm is not None:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
            frames.append((sym, m.group(2)))


def stat_counts(path):
    counts = {}
    if not path.exists():
        return counts
    for line in path.read_text().splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[2].startswith("syscalls:sys_enter_"):
            try:
                counts[parts[2].removeprefix("syscalls:sys_enter_")] = int(parts[0])
            except ValueError:
                pass
    return counts


def main():
    out = Path(sys.argv[1])
    gb = int(sys.argv[2]) / 1e9
    targets = sys.argv[3:]
    # cost[(target, role)][category] = ns; threads[(target, role)][tid] = (comm, ns, {cat: ns})
    cost = defaultdict(lambda: defaultdict(int))
    threads = defaultdict(lambda: defaultdict(lambda: [None, 0, defaultdict(int)]))
    # leaves[category][symbol] = ns, over every target: what each cost is made of
    leaves = defaultdict(lambda: defaultdict(int))
    calls = {}
    for t in targets:
        for side in ("client", "server"):
            role = "sender" if SENDER.get(t, "client") == side else "receiver"
            data = out / f"{t}.{side}.data"
            if not data.exists():
                continue
            for comm, tid, period, frames in samples(data):
                if comm == "perf" or comm.startswith("perf-exec"):
                    continue
                cat = classify(frames)
                cost[(t, role)][cat] += period
                if frames:
                    # the leaf, and for kernel samples the system call it is under
                    entry = next((f[0] for f in frames if re.match(r"__(x64|se)_sys_", f[0])), "")
                    leaves[cat][frames[0][0] + (f" < {entry}" if entry else "")] += period
                th = threads[(t, role)][tid]
                th[0] = comm
                th[1] += period
                th[2][cat] += period
            calls[(t, role)] = stat_counts(out / f"{t}.{side}.stat")

    cats = sorted(
        {c for d in cost.values() for c in d},
        key=lambda c: -sum(d.get(c, 0) for d in cost.values()),
    )
    cols = [(t, r) for t in targets for r in ("sender", "receiver") if (t, r) in cost]
    s_per_gb = lambda ns: ns / 1e9 / gb  # noqa: E731
    print("#### Where the CPU goes (CPU s per GB moved, from perf samples)")
    print()
    print("| cost | " + " | ".join(f"{t} {r}" for t, r in cols) + " |")
    print("| --- |" + " --- |" * len(cols))
    for c in cats:
        print(
            f"| {c} | "
            + " | ".join(
                (f"{s_per_gb(cost[k].get(c, 0)):.2f}" if cost[k].get(c, 0) else "·") for k in cols
            )
            + " |"
        )
    print("| **total** | " + " | ".join(f"**{s_per_gb(sum(cost[k].values())):.2f}**" for k in cols) + " |")
    print()
    print("#### System calls per GB moved (perf stat, a second run)")
    print()
    names = sorted({n for d in calls.values() for n in d if any(d.get(n, 0) for d in calls.values())})
    print("| call | " + " | ".join(f"{t} {r}" for t, r in cols) + " |")
    print("| --- |" + " --- |" * len(cols))
    for n in names:
        print(
            f"| {n} | "
            + " | ".join(f"{calls.get(k, {}).get(n, 0) / gb:,.0f}" for k in cols)
            + " |"
        )
    print()
    print("#### Threads (CPU s per GB, the three largest costs in each)")
    print()
    print("| target | end | thread | CPU s/GB | largest costs |")
    print("| --- | --- | --- | --- | --- |")
    for k in cols:
        ths = sorted(threads[k].items(), key=lambda kv: -kv[1][1])
        for tid, (comm, ns, cs) in ths:
            if s_per_gb(ns) < 0.02:
                continue
            top = sorted(cs.items(), key=lambda kv: -kv[1])[:3]
            tops = "; ".join(f"{c.split(' (')[0]} {s_per_gb(v):.2f}" for c, v in top)
            print(f"| {k[0]} | {k[1]} | {comm} {tid} | {s_per_gb(ns):.2f} | {tops} |")


    total = sum(sum(d.values()) for d in cost.values())
    with open(out / "leaves.md", "w") as f:
        f.write("# The largest leaf functions of each cost, all targets together (share of all samples)\n")
        for c in cats:
            f.write(f"\n## {c}\n")
            for sym, ns in sorted(leaves[c].items(), key=lambda kv: -kv[1])[:8]:
                f.write(f"- {100 * ns / total:.2f}% {sym}\n")
    print()
    print(f"(The largest functions under each cost: {out / 'leaves.md'}.)")


if __name__ == "__main__":
    main()
