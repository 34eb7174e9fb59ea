"""`make bench`: run every benchmark; paste the output into bench/README.md."""
import subprocess
import sys

BENCHMARKS = ["bench.registers_export", "bench.signing", "bench.archive", "bench.appointments",
              "bench.accessibility",
              "bench.verification", "bench.http_certification", "bench.blta_delivery",
              "bench.supervision", "bench.profiles", "bench.load", "bench.openloop",
              "bench.scaleout", "bench.soak"]

if __name__ == "__main__":
    chosen = sys.argv[1:] or BENCHMARKS
    for module in chosen:
        subprocess.run([sys.executable, "-m", module], check=True)
