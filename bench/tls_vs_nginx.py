#!/usr/bin/env python3
"""rampartd + transport_tls vs nginx over TLS: keep-alive HTTPS requests, resumed
handshakes and full handshakes, alternating rounds, the same certificate.

Started by bench/run.sh after the other parts (same temporary directory and pid
file: run.sh kills, on exit, every PID recorded in <tmpdir>/pids that still runs
rampartd, nginx, wrk or openssl; this script also stops what it starts, in a
finally block and on SIGTERM/SIGINT/SIGHUP). Helpers: bench/benchlib.py.

  certificates  scripts/gen-certs.sh <tmpdir>/tls-certs 1: a fresh CA and node_1
                (ECDSA P-256, SANs node_1, rampart-node-1, localhost, 127.0.0.1)
  rampartd      api.tls.cert/key = node_1, plugins.load [transport_tls] and no other
                plugin (so no rate limiter is loaded: nothing limits requests or
                connections), otherwise the configuration of bench/http_vs_nginx.py
  nginx         the configuration of bench/http_vs_nginx.py (benchlib.nginx_config)
                with `listen ... ssl`, the same certificate, TLS 1.2 only, the same
                ECDHE AEAD suites and groups as transport_tls, server preference,
                session tickets on (session cache none: tickets only, like rampart)

Three sections, each with one warm-up run per server (BENCH_WARMUP seconds) and
BENCH_PAIRS pairs, rampart first in each pair (A B A B ...):
  1. wrk -t1 -c64 -dNs --latency https://127.0.0.1:PORT/health (keep-alive HTTPS);
  2. openssl s_time -connect 127.0.0.1:PORT -reuse -time N (resumed handshakes,
     one connection at a time; the session comes from the ticket of the first one);
  3. openssl s_time -connect 127.0.0.1:PORT -new -time N (full handshakes).
s_time sends no request (no -www): a connection is a handshake and a close.
Per run: rate (wrk's req/s; s_time: connections / wall time of the s_time process),
server CPU per request or handshake (utime+stime of all the server's processes
and threads, /proc/PID/stat), steal, the client's CPU and everybody else's.

Checked (the measurement is refused, exit 1, when a check fails): both servers
present the same certificate (SHA-256 of the DER = node_1.pem's), verified
against the CA, over TLS 1.2; GET /health over HTTPS answers 200 with the 16-byte
body and no RateLimit headers; every wrk run has 0 non-2xx and 0 socket errors;
every -reuse run resumed >= 99 % of its connections, every -new run none.

Environment as bench/http_vs_nginx.py: BENCH_PAIRS (5), BENCH_SECONDS (10, also
the -time of s_time), BENCH_WARMUP (2), BENCH_CONNECTIONS (64), BENCH_THREADS (1).
Targets (informational): median req/s ratio >= 1.0 and median resumed-handshake
ratio >= 1.0; the full-handshake ratio is reported only.
Exit status: 0 when everything ran and the checks held, 1 otherwise.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

from benchlib import (BenchError, run_bench, Nginx, Rampart, TLSFiles, fmt_k, median_of,
                      nginx_version, print_table, progress_line, raise_on_signals, read_bench_env,
                      run_measured, run_wrk, tls_peer, BODY, CLK_TCK)

RESUMED_MIN = 0.99  # share of resumed connections a -reuse run must reach


# ---------------------------------------------------------------- s_time

def parse_s_time(out):
    """Connections made in the timed loop and how many of them were resumed.

    s_time prints one character per connection ('r' resumed, '*' a TLS 1.2 full
    handshake, 't' or '3' older versions) and then "N connections in Xs; ..."
    once per timed loop; with -reuse or -new there is exactly one timed loop."""
    m = re.findall(r"^(\d+) connections in [\d.]+s;", out, re.M)
    if len(m) != 1:
        raise BenchError("s_time printed no (or more than one) 'N connections in Xs' line:\n" + out[-2000:])
    n = int(m[0])
    marks = "".join(line for line in out.splitlines() if line and re.fullmatch(r"[r*t3]+", line))
    return {"connections": n, "resumed": marks.count("r"), "marks": len(marks)}


def run_s_time(server, mode, seconds, logdir, label):
    """openssl s_time -mode against server: one connection at a time for `seconds`."""
    cmd = ["openssl", "s_time", "-connect", f"127.0.0.1:{server.port}", f"-{mode}", "-time", str(seconds)]
    stdout, m = run_measured(server, cmd, seconds, logdir, label, "s_time")
    r = parse_s_time(stdout)
    if r["connections"] == 0:
        raise BenchError(f"s_time -{mode} made no connection to {server.name}")
    r.update(m)
    # s_time's loop ends in the second after -time (it compares time(NULL)), so its
    # own "real seconds" is an integer: rate over the measured wall time instead.
    r["rate"] = r["connections"] / r["elapsed_s"]
    r["cpu_us_per_hs"] = r["cpu_s"] * 1e6 / r["connections"]
    return r


def s_time_progress(i, n, a, b):
    return (f"pair {i}/{n}: rampart {a['rate']:.0f}/s, nginx {b['rate']:.0f}/s, "
            f"ratio {a['rate'] / b['rate']:.2f}x; CPU/handshake {a['cpu_us_per_hs']:.0f} vs "
            f"{b['cpu_us_per_hs']:.0f} us; resumed {a['resumed']}/{a['connections']} vs "
            f"{b['resumed']}/{b['connections']}; server/s_time/other cores {a['server_cores']:.2f}/"
            f"{a['wrk_cores']:.2f}/{a['other_cores']:.2f} vs {b['server_cores']:.2f}/"
            f"{b['wrk_cores']:.2f}/{b['other_cores']:.2f}")


# ---------------------------------------------------------------- checks

def negotiated(server, files):
    """Protocol, cipher and key-exchange group the server picks for a default OpenSSL
    client (what wrk and s_time offer), from openssl s_client -brief; and the check that
    it presents files' certificate, verified against the CA."""
    version, cipher, cert = tls_peer(server.port, files)
    if cert != files.cert_sha256():
        raise BenchError(f"{server.name} presents a certificate with SHA-256 {cert}, "
                         f"not {files.cert} ({files.cert_sha256()})")
    if version != "TLSv1.2":
        raise BenchError(f"{server.name} negotiated {version}, want TLSv1.2 for both servers")
    group = "?"
    try:
        p = subprocess.run(["openssl", "s_client", "-brief", "-connect", f"127.0.0.1:{server.port}",
                            "-CAfile", files.ca, "-verify_return_error"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
        m = re.search(r"(?:Server|Peer) Temp Key: ([^\n]+)", p.stdout + p.stderr)
        if m:
            group = m.group(1).strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return f"{version} {cipher}, key exchange {group}, certificate sha256:{cert[:8]}…{cert[-8:]} verified"


def check_no_limiter(server):
    status, headers, body = server.get()
    if status != 200 or body != BODY:
        raise BenchError(f"{server.name}: GET /health over HTTPS answered {status} {body!r}")
    limited = sorted(h for h in headers if h.startswith("ratelimit") or h == "retry-after")
    if limited:
        raise BenchError(f"{server.name}: GET /health carries {', '.join(limited)}: a rate limiter "
                         "is in the path; the HTTPS bench must run without one")


def check_wrk(who, i, r, problems):
    if r["non2xx"] or r["sock_errors"]:
        problems.append(f"https pair {i} {who}: {r['non2xx']} non-2xx responses, "
                        f"{r['sock_errors']} socket errors")


def check_s_time(mode, who, i, r, problems):
    share = r["resumed"] / r["connections"]
    if mode == "reuse" and share < RESUMED_MIN:
        problems.append(f"-reuse pair {i} {who}: {r['resumed']} of {r['connections']} connections "
                        f"resumed ({100 * share:.1f} %, want >= {100 * RESUMED_MIN:.0f} %)")
    if mode == "new" and r["resumed"]:
        problems.append(f"-new pair {i} {who}: {r['resumed']} connections resumed (want 0)")


def handshake_failures(rampart):
    return len(re.findall(r'"msg":"TLS handshake failed"', rampart.log_text()))


# ---------------------------------------------------------------- report

def verdict(ok):
    return "PASS" if ok else "FAIL"


def print_https(args, pairs):
    w = sys.stdout.write
    w(f"\n1. keep-alive HTTPS, GET /health: wrk -t{args.threads} -c{args.connections} "
      f"-d{args.seconds}s --latency https://127.0.0.1:PORT/health, {len(pairs)} pairs, "
      "rampart first in each pair\n\n")
    hdr = ("pair", "rampart req/s", "nginx req/s", "ratio", "p99 rampart", "p99 nginx",
           "CPU us/req rampart", "CPU us/req nginx", "CPU ratio", "steal % (r/n)",
           "other load, cores (r/n)")
    rows = []
    for i, (a, b) in enumerate(pairs, 1):
        rows.append((str(i), fmt_k(a["rps"]), fmt_k(b["rps"]), f"{a['rps'] / b['rps']:.2f}x",
                     f"{a['p99_ms']:.2f} ms", f"{b['p99_ms']:.2f} ms",
                     f"{a['cpu_us_per_req']:.2f}", f"{b['cpu_us_per_req']:.2f}",
                     f"{a['cpu_us_per_req'] / b['cpu_us_per_req']:.2f}x",
                     f"{a['steal_pct']:.0f}/{b['steal_pct']:.0f}",
                     f"{a['other_cores']:.2f}/{b['other_cores']:.2f}"))
    print_table(hdr, rows)
    ra = [a for a, _ in pairs]
    nb = [b for _, b in pairs]
    w(f"\nmedians: rampart {fmt_k(median_of('rps', ra))} req/s, p99 {median_of('p99_ms', ra):.2f} ms, "
      f"{median_of('cpu_us_per_req', ra):.2f} us CPU/req | nginx {fmt_k(median_of('rps', nb))} req/s, "
      f"p99 {median_of('p99_ms', nb):.2f} ms, {median_of('cpu_us_per_req', nb):.2f} us CPU/req\n")
    rps = statistics.median(a["rps"] / b["rps"] for a, b in pairs)
    cpu = statistics.median(a["cpu_us_per_req"] / b["cpu_us_per_req"] for a, b in pairs)
    w(f"median req/s ratio (rampart/nginx):          {rps:.2f}x\n")
    w(f"median CPU-per-request ratio (rampart/nginx): {cpu:.2f}x\n")
    return rps, cpu


def print_handshakes(title, pairs):
    w = sys.stdout.write
    w(f"\n{title}\n\n")
    hdr = ("pair", "rampart /s", "nginx /s", "ratio", "CPU us/hs rampart", "CPU us/hs nginx",
           "CPU ratio", "resumed (r/n)", "s_time cores (r/n)", "steal % (r/n)",
           "other load, cores (r/n)")
    rows = []
    for i, (a, b) in enumerate(pairs, 1):
        rows.append((str(i), f"{a['rate']:.0f}", f"{b['rate']:.0f}", f"{a['rate'] / b['rate']:.2f}x",
                     f"{a['cpu_us_per_hs']:.0f}", f"{b['cpu_us_per_hs']:.0f}",
                     f"{a['cpu_us_per_hs'] / b['cpu_us_per_hs']:.2f}x",
                     f"{100 * a['resumed'] / a['connections']:.0f}/"
                     f"{100 * b['resumed'] / b['connections']:.0f} %",
                     f"{a['wrk_cores']:.2f}/{b['wrk_cores']:.2f}",
                     f"{a['steal_pct']:.0f}/{b['steal_pct']:.0f}",
                     f"{a['other_cores']:.2f}/{b['other_cores']:.2f}"))
    print_table(hdr, rows)
    ra = [a for a, _ in pairs]
    nb = [b for _, b in pairs]
    w(f"\nmedians: rampart {median_of('rate', ra):.0f}/s, {median_of('cpu_us_per_hs', ra):.0f} us "
      f"CPU/handshake | nginx {median_of('rate', nb):.0f}/s, {median_of('cpu_us_per_hs', nb):.0f} us "
      "CPU/handshake\n")
    rate = statistics.median(a["rate"] / b["rate"] for a, b in pairs)
    cpu = statistics.median(a["cpu_us_per_hs"] / b["cpu_us_per_hs"] for a, b in pairs)
    w(f"median handshakes/s ratio (rampart/nginx):     {rate:.2f}x\n")
    w(f"median CPU-per-handshake ratio (rampart/nginx): {cpu:.2f}x\n")
    return rate, cpu


def print_report(args, rampart, nginx, params, https, reuse, new, failures, problems):
    w = sys.stdout.write
    w("\nrampartd (transport_tls, mbedTLS) vs nginx (OpenSSL) over TLS, the same certificate "
      "(scripts/gen-certs.sh, ECDSA P-256)\n")
    w(f"nginx: {nginx_version()}, worker_processes 1, return 200, TLS 1.2 only, tickets on; "
      f"rampartd: {rampart.binary}, plugins.load [transport_tls]; "
      f"{os.cpu_count()} CPUs; CLK_TCK {CLK_TCK}\n")
    w(f"rampart negotiates: {params['rampart']}\n")
    w(f"nginx negotiates:   {params['nginx']}\n")
    w("(ratio = rampart/nginx; CPU = server utime+stime, all processes and threads, per request or "
      "per handshake;\n steal = hypervisor steal during the run; other load = CPU used by neither the "
      f"server nor the client, in cores out of {os.cpu_count()};\n s_time: one connection at a time, "
      "no request; rate = connections / wall time of the s_time run)\n")
    rps, rps_cpu = print_https(args, https)
    title = (f"2. resumed handshakes (session ticket): openssl s_time -connect 127.0.0.1:PORT -reuse "
             f"-time {args.seconds}, {len(reuse)} pairs")
    reuse_ratio, _ = print_handshakes(title, reuse)
    title = (f"3. full handshakes: openssl s_time -connect 127.0.0.1:PORT -new -time {args.seconds}, "
             f"{len(new)} pairs")
    new_ratio, new_cpu = print_handshakes(title, new)
    w("\ntargets (informational):\n")
    w(f"  keep-alive HTTPS, median ratio >= 1.0x nginx req/s:   {rps:.2f}x  {verdict(rps >= 1.0)}\n")
    w(f"  resumed handshakes, median ratio >= 1.0x nginx:        {reuse_ratio:.2f}x  "
      f"{verdict(reuse_ratio >= 1.0)}\n")
    w(f"  full handshakes (reported, no target):                {new_ratio:.2f}x "
      f"(CPU per handshake {new_cpu:.2f}x nginx's)\n")
    w(f"  keep-alive HTTPS CPU per request (reported):          {rps_cpu:.2f}x nginx's\n")
    w("\nchecks (the run measures what it claims):\n")
    if failures:
        w(f"  note: rampartd logged {failures} 'TLS handshake failed' lines (see {rampart.log_path})\n")
    if problems:
        for p in problems:
            w(f"  FAIL: {p}\n")
    else:
        w("  PASS: the same certificate from both, verified, TLS 1.2; no rate limiter in the path; "
          "0 non-2xx and 0 socket errors\n        in every wrk run; every -reuse run resumed "
          f">= {100 * RESUMED_MIN:.0f} % of its connections, every -new run none\n")


# ---------------------------------------------------------------- main

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build directory (holds rampartd and plugins/)")
    ap.add_argument("--tmpdir", required=True, help="scratch directory (configs, logs, certificates)")
    ap.add_argument("--gen-certs", default=os.path.join(os.path.dirname(here), "scripts", "gen-certs.sh"),
                    help="the certificate script (default: the source tree's scripts/gen-certs.sh)")
    args = ap.parse_args()
    raise_on_signals()

    pidfile = os.path.join(args.tmpdir, "pids")
    certs = TLSFiles(os.path.join(args.tmpdir, "tls-certs"))
    rampart = Rampart(args.tmpdir, pidfile, args.build, name="rampartd (HTTPS)", subdir="rampart-tls",
                      plugins_load=["transport_tls"], tls=certs)
    nginx = Nginx(args.tmpdir, pidfile, name="nginx (HTTPS)", subdir="nginx-tls", tls=certs)

    def body():
        read_bench_env(args)
        logdir = os.path.join(args.tmpdir, "tls-runs")
        os.makedirs(logdir, exist_ok=True)
        TLSFiles.generate(args.gen_certs, certs.dir)
        if not os.path.isfile(os.path.join(rampart.plugins_dir, "transport_tls.so")):
            raise BenchError(f"{rampart.plugins_dir}/transport_tls.so not found "
                             "(build with -Dplugin_transport_tls=true)")

        rampart.start()
        nginx.start()
        params = {"rampart": negotiated(rampart, certs), "nginx": negotiated(nginx, certs)}
        check_no_limiter(rampart)
        check_no_limiter(nginx)
        print(f"certificates: {certs.dir} (node_1.pem, sha256:{certs.cert_sha256()})")
        print(f"rampartd pid {rampart.proc.pid} on https://127.0.0.1:{rampart.port} "
              f"(log {rampart.log_path}): {params['rampart']}")
        print(f"nginx pids {nginx.pids()} on https://127.0.0.1:{nginx.port} "
              f"(log {nginx.log_path}): {params['nginx']}")

        problems = []
        print("\n1. keep-alive HTTPS (wrk)", flush=True)
        if args.warmup:
            print(f"warm-up: {args.warmup}s each")
            run_wrk(rampart, args.warmup, args.threads, args.connections, logdir, "warmup-https-rampart")
            run_wrk(nginx, args.warmup, args.threads, args.connections, logdir, "warmup-https-nginx")
        https = []
        for i in range(1, args.pairs + 1):
            a = run_wrk(rampart, args.seconds, args.threads, args.connections, logdir, f"https{i}-rampart")
            b = run_wrk(nginx, args.seconds, args.threads, args.connections, logdir, f"https{i}-nginx")
            print(progress_line(i, args.pairs, "rampart", a, "nginx", b), flush=True)
            check_wrk("rampart", i, a, problems)
            check_wrk("nginx", i, b, problems)
            https.append((a, b))

        sections = {}
        for n, mode, what in ((2, "reuse", "resumed handshakes"), (3, "new", "full handshakes")):
            print(f"\n{n}. {what} (openssl s_time -{mode})", flush=True)
            if args.warmup:
                print(f"warm-up: {args.warmup}s each")
                run_s_time(rampart, mode, args.warmup, logdir, f"warmup-{mode}-rampart")
                run_s_time(nginx, mode, args.warmup, logdir, f"warmup-{mode}-nginx")
            pairs = []
            for i in range(1, args.pairs + 1):
                a = run_s_time(rampart, mode, args.seconds, logdir, f"{mode}{i}-rampart")
                b = run_s_time(nginx, mode, args.seconds, logdir, f"{mode}{i}-nginx")
                print(s_time_progress(i, args.pairs, a, b), flush=True)
                check_s_time(mode, "rampart", i, a, problems)
                check_s_time(mode, "nginx", i, b, problems)
                pairs.append((a, b))
            sections[mode] = pairs

        print_report(args, rampart, nginx, params, https, sections["reuse"], sections["new"],
                     handshake_failures(rampart), problems)
        if problems:
            print("bench: error: TLS checks failed (above): the figures do not measure what they claim",
                  file=sys.stderr)
            return 1
        return 0

    return run_bench(body, cleanup=lambda: (nginx.stop(), rampart.stop()))


if __name__ == "__main__":
    sys.exit(main())
