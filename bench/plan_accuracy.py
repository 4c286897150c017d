#!/usr/bin/env python3
"""slimlm plan's estimate against slimlm bench's measurement, model by model (docs/optimize.md).

For each GGUF model: `slimlm plan MODEL -c 512 -t T --json`, then
`slimlm bench MODEL -p 512 -n 128 -t T -r 2 --probe-mib 0 -o jsonl`, and one line comparing the
estimated total memory with the process's peak resident memory, the estimated tg with tg128 and
the estimated pp with pp512. Run it on a quiet machine: plan probes the bandwidth just before.

usage: bench/plan_accuracy.py MODEL.gguf [MODEL.gguf ...] [--threads T] [--slimlm PATH]
(make the models with bench/run_targets.sh, or slimlm init + slimlm quantize)
"""
import argparse
import json
import subprocess


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--threads", default="1")
    parser.add_argument("--slimlm", default="build/release/src/tools/slimlm")
    args = parser.parse_args()
    for model in args.models:
        plan = json.loads(subprocess.run(
            [args.slimlm, "plan", model, "-c", "512", "-t", args.threads, "--json"],
            capture_output=True, text=True, check=True).stdout)
        out = subprocess.run(
            [args.slimlm, "bench", model, "-p", "512", "-n", "128", "-t", args.threads, "-r", "2",
             "--probe-mib", "0", "-o", "jsonl"],
            capture_output=True, text=True, check=True).stdout
        records = [json.loads(line) for line in out.splitlines() if line.strip()]
        peak = max(r["peak_rss_bytes"] for r in records)
        tg = next(r["avg_ts"] for r in records if r["n_gen"] > 0)
        pp = next(r["avg_ts"] for r in records if r["n_prompt"] > 0)
        e = plan["estimate"]
        mib = 1 << 20
        print(f"{model}: memory {e['total_bytes'] / mib:.1f} / {peak / mib:.1f} MiB "
              f"({e['total_bytes'] / peak - 1:+.1%}); tg {e['tg']:.1f} / {tg:.1f} "
              f"({e['tg'] / tg - 1:+.1%}); pp {e['pp']:.0f} / {pp:.0f} ({e['pp'] / pp - 1:+.1%}); "
              f"bandwidth {plan['machine']['bandwidth_gbs']:.1f} GB/s", flush=True)


if __name__ == "__main__":
    main()
