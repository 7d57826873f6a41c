"""`bangkom bench consumer` at a small size: both ways of committing read every record of a
real topic and the results file has both rates and their ratio (the figures themselves are a
benchmark's, README; no test holds a speed)."""

import json
import subprocess

from federation_helpers import BANGKOM, ROOT


def test_the_consumer_bench_reads_every_record_both_ways(tmp_path):
    done = subprocess.run([BANGKOM, "bench", "consumer", "--staff", "100", "--results-dir",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(next(tmp_path.glob("consumer-*.json")).read_text())
    assert results["records"] > 100
    for way in ("commit_per_record", "batched"):
        assert results[way]["records_per_s"] > 0 and results[way]["seconds"] > 0, results
    assert results["ratio"] == round(
        results["batched"]["records_per_s"] / results["commit_per_record"]["records_per_s"], 1)
