#!/usr/bin/env python3
"""Load test of a running mmx-coord (issue 5): N concurrent streaming clients plus a batch job
of M prompts, all at once. Checks that every request completes, that greedy outputs equal the
same prompts run alone, and samples the coordinator's memory (VmRSS) to show it stays bounded.
Prints one Markdown summary. Run it through bench/load_test.sh (starts the demo cluster).

  load_test.py --server HOST:PORT --coordinator-pid PID [--streams 64] [--job 200] [--max-tokens 32]
"""
import argparse
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
from mmx_client import MmxClient, inference_pb2  # noqa: E402

WORDS = ("the quick brown fox jumps over a lazy dog while seven wizards quietly judge "
         "every box of mixed pizza and code compiles in the night").split()


def prompt(i):
    # Distinct, deterministic prompts of 4 to 19 words.
    n = 4 + i % 16
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(n)) + f" #{i}"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--coordinator-pid", type=int, required=True)
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--job", type=int, default=200)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--check", type=int, default=24, help="job results compared with solo runs")
    args = ap.parse_args()
    client = MmxClient(args.server)
    sampling = dict(max_tokens=args.max_tokens, temperature=0.0, ignore_eos=True)

    rss = [rss_kib(args.coordinator_pid)]
    stop_sampling = threading.Event()

    def sample():
        while not stop_sampling.is_set():
            rss.append(rss_kib(args.coordinator_pid))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample)
    sampler.start()

    results, errors, ttft = {}, [], []

    def stream(i):
        t0 = time.time()
        ids, first = [], None
        try:
            for r in client.generate(prompt=prompt(i), **sampling):
                if r.token_ids and first is None:
                    first = time.time() - t0
                ids.extend(r.token_ids)
            results[i] = ids
            ttft.append(first)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(f"stream {i}: {e}")

    t_start = time.time()
    job_prompts = [prompt(1000 + i) for i in range(args.job)]
    job = client.submit_job([client.request(prompt=p, **sampling) for p in job_prompts],
                            idempotency_key=f"load-test-{os.getpid()}-{t_start}")
    threads = [threading.Thread(target=stream, args=(i,)) for i in range(args.streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_streams = time.time() - t_start
    done = client.wait_job(job.job_id, poll_s=0.5)
    t_all = time.time() - t_start
    stop_sampling.set()
    sampler.join()

    # Solo runs, one at a time, on an idle server: the reference outputs.
    mismatches = 0
    for i in range(args.streams):
        solo = [t for r in client.generate(prompt=prompt(i), **sampling) for t in r.token_ids]
        mismatches += results.get(i) != solo
    job_ok = sum(1 for r in done.results if not r.error and len(r.token_ids) == args.max_tokens)
    checked = 0
    for r in list(done.results)[: args.check]:
        solo = [t for x in client.generate(prompt=job_prompts[r.index], **sampling) for t in x.token_ids]
        mismatches += list(r.token_ids) != solo
        checked += 1

    tokens = args.max_tokens * (args.streams + args.job)
    print("| measure | value |\n|---|---|")
    print(f"| streaming clients completed | {len(results)}/{args.streams} ({len(errors)} errors) |")
    print(f"| job state, results complete | {inference_pb2.JobState.Name(done.state)}, {job_ok}/{args.job} |")
    print(f"| greedy outputs equal to solo runs | {args.streams + checked - mismatches}/{args.streams + checked} "
          f"(all {args.streams} streams, {checked} job results) |")
    print(f"| wall time: streams / streams + job | {t_streams:.1f} s / {t_all:.1f} s |")
    print(f"| generated tokens/s over the whole run | {tokens / t_all:.1f} |")
    if ttft:
        q = statistics.quantiles(ttft, n=20)
        print(f"| stream time to first token p50 / p95 | {statistics.median(ttft):.2f} s / {q[18]:.2f} s |")
    print(f"| coordinator RSS: start / max / end | {rss[0] / 1024:.1f} / {max(rss) / 1024:.1f} / {rss[-1] / 1024:.1f} MiB |")
    for e in errors[:5]:
        print(f"error: {e}", file=sys.stderr)
    ok = not errors and len(results) == args.streams and done.state == inference_pb2.JOB_STATE_SUCCEEDED \
        and job_ok == args.job and mismatches == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
