#!/usr/bin/env python3
"""bench/report.py RESULTS_DIR: the Markdown report of one bench/run, from its meta.tsv and runs.tsv.

Medians over the runs that succeeded; a measurement with a failed run says so instead of a
figure. MB = 10^6 bytes. Standard library only.
"""

import csv
import statistics
import sys
from collections import OrderedDict
from pathlib import Path


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def num(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


class Row:
    """All runs of one (profile, test, tool, direction)."""

    def __init__(self, key):
        self.profile, self.test, self.tool, self.direction = key
        self.runs = []

    @property
    def ok(self):
        return [r for r in self.runs if r["status"] == "ok"]

    def problem(self):
        """'skipped: ...' or 'FAILED (k/n): ...', or None when every run succeeded."""
        skipped = [r for r in self.runs if r["status"].startswith("skipped")]
        if skipped:
            return skipped[0]["status"]
        failed = [r for r in self.runs if r["status"] != "ok"]
        if failed:
            reason = failed[0]["status"].removeprefix("FAILED: ")
            return f"**FAILED** ({len(failed)}/{len(self.runs)}): {reason}"
        return None

    def rates(self, per="bytes"):
        """Per-run rates: MB/s (per='bytes') or files/s (per='files')."""
        out = []
        for r in self.ok:
            secs = num(r["seconds"])
            amount = num(r[per])
            if secs and amount is not None:
                out.append(amount / secs / (1e6 if per == "bytes" else 1))
        return out

    def median(self, per="bytes"):
        rates = self.rates(per)
        return statistics.median(rates) if rates else None

    def spread(self, per="bytes"):
        rates = self.rates(per)
        if len(rates) < 2:
            return "—"
        return f"{fmt(min(rates))}–{fmt(max(rates))}"

    def size(self):
        return label(int(self.runs[0]["bytes"])) if self.ok else "—"

    def field(self, name, how):
        values = [num(r[name]) for r in self.ok]
        values = [v for v in values if v is not None]
        return how(values) if values else None


def fmt(x, digits=1):
    return "—" if x is None else f"{x:,.{digits}f}"


def ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def label(b):
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if b and b % (1 << shift) == 0:
            return f"{b >> shift} {unit}"
    return f"{b} B"


def mib(kib):
    return "—" if kib is None else f"{kib / 1024:,.1f} MiB"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main():
    results = Path(sys.argv[1])
    meta = {m["key"]: m["value"] for m in read_tsv(results / "meta.tsv")}
    rows = OrderedDict()
    for r in read_tsv(results / "runs.tsv"):
        key = (r["profile"], r["test"], r["tool"], r["direction"])
        rows.setdefault(key, Row(key)).runs.append(r)
    # In the order measured, but each direction of each test together, qft first.
    first = {}
    for i, (profile, test, tool, direction) in enumerate(rows):
        for k in (profile, test, direction):
            first.setdefault(k, i)
    order = {key: i for i, key in enumerate(rows)}
    rows = OrderedDict(
        sorted(
            rows.items(),
            key=lambda kv: (
                first[kv[0][0]],
                first[kv[0][1]],
                first[kv[0][3]],
                not kv[0][2].startswith("qft"),
                order[kv[0]],
            ),
        )
    )

    def find(profile, test, tool, direction):
        return rows.get((profile, test, tool, direction))

    def qft_median(profile, direction):
        row = find(profile, "large", "qft", direction)
        return row.median() if row and not row.problem() else None

    out = []
    out.append(f"### Run of {meta.get('date', '?')}")
    out.append("")
    out.append(
        f"- Machine: {meta.get('nproc')} cores, {meta.get('cpu')}, {meta.get('memory')} RAM, "
        f"Linux {meta.get('kernel')}; load average at the start {meta.get('load')}"
    )
    out.append(
        f"- qft {meta.get('qft_rev')}; peers {meta.get('openssh')}, rsync {meta.get('rsync')}, "
        f"{meta.get('qcp', 'qcp not measured')}"
        + (f", ssh default cipher {meta['default_cipher']}" if meta.get("default_cipher") else "")
    )
    out.append(f"- Pinned: {meta.get('pin', 'no')}")
    out.append(
        f"- Parameters: profiles {meta.get('profiles')}; {meta.get('runs')} run(s) each, medians shown; "
        f"large file {meta.get('size')} (wan: {meta.get('wan_size')}); {meta.get('files')} files of 4 KiB "
        f"(wan: {meta.get('wan_files', meta.get('files'))}); "
        f"{meta.get('clients')} clients; wan = {meta.get('wan')}; measurements: {meta.get('only')}"
    )
    out.append(
        f"- QFT_SERVE_ARGS=`{meta.get('qft_serve_args', '')}` QFT_CONNECT_ARGS=`{meta.get('qft_connect_args', '')}`"
    )
    out.append(
        "- MB = 10^6 bytes. Sources are warm in the page cache for every tool (nothing is dropped). "
        "Every destination is checked with SHA-256 after the timed part. Wall time includes process "
        "start and the handshake, except for the ceiling (stream open to ack)."
    )

    large = [r for r in rows.values() if r.test == "large"]
    if large:
        body = []
        for r in large:
            q = qft_median(r.profile, r.direction)
            p = r.problem()
            if p:
                body.append([r.profile, r.direction, r.tool, "", p, "", ""])
                continue
            body.append(
                [
                    r.profile,
                    r.direction,
                    r.tool,
                    r.size(),
                    fmt(r.median()),
                    r.spread(),
                    "—" if r.tool.startswith("qft") else ratio(q, r.median()),
                ]
            )
        out += ["", "#### Large file, file to file (MB/s)", ""]
        out.append(table(["profile", "direction", "tool", "size", "MB/s", "min–max", "qft ÷ tool"], body))

    ceiling = [r for r in rows.values() if r.test == "ceiling"]
    if ceiling:
        body = []
        for r in ceiling:
            p = r.problem()
            if p:
                body.append([r.profile, r.tool, "", p, "", "", "", ""])
                continue
            vs_ref = "—"
            if r.tool.startswith("quic_ceiling"):
                ref = find(r.profile, "ceiling", r.tool.replace("quic_ceiling", "quinn reference"), r.direction)
                if ref and not ref.problem():
                    vs_ref = ratio(r.median(), ref.median())
            body.append(
                [
                    r.profile,
                    r.tool,
                    r.size(),
                    fmt(r.median()),
                    r.spread(),
                    vs_ref,
                    ratio(qft_median(r.profile, "upload"), r.median()),
                    ratio(qft_median(r.profile, "download"), r.median()),
                ]
            )
        out += [
            "",
            "#### QUIC ceilings: memory to memory, one stream: qft's QUIC and TLS settings (quic_ceiling), "
            "plain quinn (quinn reference)",
            "",
        ]
        out.append(
            table(
                [
                    "profile",
                    "mode",
                    "size",
                    "MB/s",
                    "min–max",
                    "ceiling ÷ quinn reference",
                    "qft upload ÷ this",
                    "qft download ÷ this",
                ],
                body,
            )
        )

    small = [r for r in rows.values() if r.test == "small"]
    if small:
        body = []
        for r in small:
            qrow = find(r.profile, "small", "qft put -r", "upload")
            q = qrow.median() if qrow and not qrow.problem() else None
            p = r.problem()
            files = r.runs[0]["files"]
            if p:
                body.append([r.profile, r.tool, "", p, "", "", ""])
                continue
            body.append(
                [
                    r.profile,
                    r.tool,
                    files,
                    fmt(r.median("files"), 0),
                    fmt(r.median(), 2),
                    r.spread("files"),
                    "—" if r is qrow else ratio(q, r.median()),
                ]
            )
        out += ["", "#### Many small files: a directory upload (4 KiB each)", ""]
        out.append(table(["profile", "tool", "files", "files/s", "MB/s", "min–max files/s", "qft ÷ tool"], body))

    clients = [r for r in rows.values() if r.test == "clients"]
    if clients:
        body = []
        for r in clients:
            # Each tool against its own single download: "qft x16" against qft's, "scp -c
            # aes128-gcm x16" against scp's; the plain quinn reference against its own one
            # sender of the same total ("... x1", measured beside it).
            base = r.tool.rsplit(" x", 1)[0]
            if r.tool == base + " x1":
                continue
            srow = find(r.profile, "large", base, "download") or find(r.profile, "clients", base + " x1", r.direction)
            single = srow.median() if srow and not srow.problem() else None
            single_txt = f"{fmt(single)} ({srow.size()})" if single else "— (not measured)"
            p = r.problem()
            if p:
                body.append([r.profile, r.tool, "", p, "", single_txt, "", "", ""])
                continue
            each = label(int(r.runs[0]["bytes"]) // max(1, int(r.runs[0]["files"])))
            body.append(
                [
                    r.profile,
                    r.tool,
                    f"{r.runs[0]['files']} × {each}",
                    fmt(r.median()),
                    r.spread(),
                    single_txt,
                    ratio(r.median(), single),
                    mib(r.field("server_rss_kib", max)),
                    fmt(r.field("server_cpu_s", statistics.median), 2),
                ]
            )
        out += ["", "#### Many clients at once: separate client processes (`qft connect`, scp), downloads of distinct files; plain quinn (its `send`, SHA-256 on both ends, memory to memory) as the reference for what many processes cost", ""]
        out.append(
            table(
                [
                    "profile",
                    "tool",
                    "clients",
                    "aggregate MB/s",
                    "min–max",
                    "single client download MB/s",
                    "aggregate ÷ single",
                    "server peak RSS",
                    "server CPU s",
                ],
                body,
            )
        )

    body = []
    for r in rows.values():
        if r.problem() or not r.ok:
            continue
        cpu = r.field("client_cpu_s", statistics.median)
        scpu = r.field("server_cpu_s", statistics.median)
        gb = num(r.ok[0]["bytes"]) / 1e9
        per_gb = lambda x: fmt(x / gb if x is not None and gb else None, 2)  # noqa: E731
        both = cpu + scpu if cpu is not None and scpu is not None else None
        body.append(
            [
                r.profile,
                r.test,
                r.direction,
                r.tool,
                fmt(cpu, 2),
                per_gb(cpu),
                mib(r.field("client_rss_kib", max)),
                fmt(scpu, 2),
                per_gb(scpu),
                mib(r.field("server_rss_kib", max)),
                per_gb(both),
            ]
        )
    if body:
        out += ["", "#### CPU and memory (CPU: median of user+sys seconds; RSS: the largest peak)", ""]
        out.append(
            table(
                [
                    "profile",
                    "test",
                    "direction",
                    "tool",
                    "client CPU s",
                    "client CPU s/GB",
                    "client peak RSS",
                    "server CPU s",
                    "server CPU s/GB",
                    "server peak RSS",
                    "both ends CPU s/GB",
                ],
                body,
            )
        )
        out.append("")
        out.append(
            "Client figures come from `/usr/bin/time -v` around the client (children included: "
            "scp's and rsync's ssh, qcp's ssh). Server figures: for qft and the ceilings, the server "
            "process, CPU from /proc/PID/stat before and after each transfer, peak RSS from VmHWM, "
            "reset before each transfer; for the ssh tools and qcp, everything the transfer ran under "
            "the throwaway sshd (its session processes, the sftp server, rsync's or qcp's server), "
            "from the listener's utime+stime+cutime+cstime once the session is over; their RSS is "
            "not measured (—). In the clients test they come from `/usr/bin/time -v` around a fresh "
            "server, client CPU is the sum over all clients and client RSS the largest one."
        )
    out += packets(results)
    print("\n".join(out))


def packets(results):
    """The data sender's packets, sent and lost, from counters.tsv: qft's file transfers (the
    client's statistics for an upload, the server's for a download) and the ceilings'."""
    path = results / "counters.tsv"
    if not path.exists():
        return []
    runs = OrderedDict()
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 4:
            continue
        fields = dict(kv.split("=", 1) for kv in parts[3].split() if "=" in kv)
        try:
            sent, lost = int(fields["sent_pkts"]), int(fields["lost_pkts"])
        except (KeyError, ValueError):
            continue
        runs.setdefault((parts[0], parts[1]), []).append((sent, lost))
    if not runs:
        return []
    body = []
    for (profile, tool), got in runs.items():
        shares = [lost / sent for sent, lost in got if sent]
        body.append(
            [
                profile,
                tool,
                str(len(got)),
                f"{statistics.median(s for s, _ in got):,.0f}",
                f"{statistics.median(l for _, l in got):,.0f}",
                f"{100 * statistics.median(shares):.2f}%" if shares else "—",
                f"{100 * max(shares):.2f}%" if shares else "—",
            ]
        )
    return [
        "",
        "#### Packets: what the data's sender sent and lost (quinn's path statistics)",
        "",
        table(["profile", "transfer", "runs", "sent (median)", "lost (median)", "lost ÷ sent", "worst run"], body),
    ]


if __name__ == "__main__":
    main()
