"""`bangkom bench city` at a small size: every stage runs to the end on the real Kafka and
FerretDB, the results file has every figure, and the command exits 0 only then. The full size
(20,000 staff, three years) is a benchmark, run by hand (README), never a timed test."""

import json
import subprocess

from federation_helpers import BANGKOM, ROOT


def test_the_city_bench_runs_every_stage_and_writes_every_figure(tmp_path):
    done = subprocess.run(
        [BANGKOM, "bench", "city", "--staff", "300", "--years", "1", "--sessions-per-year", "5",
         "--import-rows", "200", "--samples", "10", "--cohort", "60", "--rate", "30",
         "--results-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(next(tmp_path.glob("city-*.json")).read_text())
    assert "error" not in results, results["error"]
    missing = [row["figure"] for row in results["against_targets"] if row["measured"] is None]
    assert missing == [], missing
    assert results["import"] == {"rows": 200, "seconds": results["import"]["seconds"],
                                 "created": 100, "updated": 100, "rejected": 0}
    assert results["attendance_completion"]["participants"] == 10  # --samples into a session of 40
    cohort = results["cohort"]
    assert cohort["errors"] == 0 and cohort["enrolled"] + cohort["waitlisted"] == 60
    assert results["attendance_completion_cohort"]["participants"] == cohort["enrolled"]
