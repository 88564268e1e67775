#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""bench/report turns bench/run-guest's results into docs/benchmarks.md: the medians, the
ratios lpshim / upstream, each target marked met or missed from those figures, a part that did
not run said so, an early stop reported, and both plots written.

    test_bench_report.py BENCH_REPORT
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

REPORT = None


def samples(*rounds):
    """bench/run-guest's call-cost samples, one per round: (ns, twin_ns, overhead_ns), and
    overhead_per_twin as if every pair of bursts had measured the same."""
    return [{"ns": ns, "twin_ns": twin, "overhead_ns": over, "overhead_per_twin": over / twin}
            for ns, twin, over in rounds]


def results(**overrides):
    """One kernel's results: every figure chosen so that its median and ratio are known."""
    r = {
        # Rounds of (unpatched, lpshim, upstream); the second round ran on a slower host.
        # Relative overheads (over the twin / the twin) per round: lpshim 20/10, 60/24, 40/10;
        # upstream 30/10, 60/20, 20/10. Their ratios 0.67, 0.83, 2.0: median 0.83, where the
        # ratio of the medians' overheads would be 40/30 and of the medians' ns 70/80.
        "call_cost": {"unpatched": samples((10, 10, 0), (20, 20, 1), (10, 10, 0)),
                      "lpshim_patched": samples((30, 10, 20), (70, 24, 60), (50, 10, 40)),
                      "upstream_patched": samples((40, 10, 30), (80, 20, 60), (30, 10, 20)),
                      "lpshim_transition": samples((60, 10, 50), (70, 20, 50), (60, 10, 50)),
                      "upstream_transition": samples((50, 10, 40), (60, 20, 40), (50, 10, 40))},
        "apply_revert": {f"{s}_{n}": {"apply_s": [a * n], "revert_s": [a * n / 2]}
                         for n in (1, 10, 100, 1000)
                         for s, a in (("lpshim", 0.001), ("upstream", 0.02))},
        "sleeping_tasks": {f"{s}_{n}": [t * n] for n in (100, 1000, 10000)
                           for s, t in (("lpshim", 0.0002), ("upstream", 0.0001))},
        "blocked_task": {"lpshim": [0.5, 0.7, 0.9], "upstream": [16.0, 16.5, 17.0],
                         "daemon_idle": {"rss_kib": 8192, "cpu_ms_per_10s": 3},
                         "daemon_transition": {"rss_kib": 9216, "cpu_ms_per_transition": 250}},
        "stall_probe": {"idle": [900], "lpshim": [800, 1200, 1500], "upstream": [2000]},
        "syscall_cost": {"idle": [700], "lpshim": [720], "upstream": [710]},
    }
    r.update(overrides)
    return r


class BenchReport(unittest.TestCase):
    def render(self, *kernels):
        """Write one result file per (kernel, results, error[, virt]) and return the markdown."""
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for kernel, res, error, *virt in kernels:
                data = {"kernel": kernel, "date": "2026-11-22", "runs": 3, "cpus": 2,
                        "results": res}
                if error:
                    data["error"] = error
                if virt:
                    data["virt"] = virt[0]
                path = os.path.join(tmp, f"{kernel}.json")
                with open(path, "w") as f:
                    json.dump(data, f)
                paths.append(path)
            md = os.path.join(tmp, "docs", "benchmarks.md")
            os.makedirs(os.path.dirname(md))
            plots = os.path.join(tmp, "docs", "benchmarks")
            subprocess.run([REPORT, "--markdown", md, "--plots", plots, "--command",
                            "scripts/bench --runs 3", "--note", "a test run"] + paths,
                           check=True, capture_output=True)
            self.plots = sorted(os.listdir(plots))
            with open(md) as f:
                return f.read()

    def test_the_header_says_what_ran_the_guests(self):
        # Results without "virt" are from before run-guest recorded it: all TCG's.
        text = self.render(("6.1-test", results(), None))
        self.assertIn("The guests run under QEMU TCG", text)
        self.assertIn("2026-11-22, 2 vCPUs (QEMU TCG), medians of 3 runs.", text)
        text = self.render(("6.1-test", results(), None, "kvm"),
                           ("6.12-test", results(), None, "kvm"))
        self.assertIn("The guests run under KVM:", text)
        self.assertNotIn("QEMU TCG", text)
        self.assertIn("2 vCPUs (KVM)", text)
        text = self.render(("6.1-test", results(), None, "qemu"),
                           ("6.12-test", results(), None, "kvm"))
        self.assertIn("different accelerators (KVM, QEMU TCG, per kernel below)", text)

    def test_targets_follow_the_figures(self):
        text = self.render(("6.1-test", results(), None))
        # The call overhead is compared within each round.
        self.assertIn("| 6.1-test | steady-state call overhead | 0.83 | ≤ 1.0 | met |", text)
        self.assertIn("| steady state | 10.0 ns | 50.0 ns | 40.0 ns | 0.83 |", text)
        self.assertIn("| steady state, over the twin | 0.0 ns | 40.0 ns | 30.0 ns | |", text)
        # During a transition: 50/40, 50/40, 50/40.
        self.assertIn("| transition open | | 60.0 ns | 50.0 ns | 1.25 |", text)
        self.assertIn("| 6.1-test | apply of 1000 functions | 0.050 | ≤ 0.1 | met |", text)
        self.assertIn("| 1000 | 1,000.0 ms | 20,000.0 ms | 0.050 | 500.0 ms | 10,000.0 ms | 0.050 |",
                      text)
        # 10,000 tasks: 2 s against 1 s, missed.
        self.assertIn("| 6.1-test | transition with 10,000 tasks | 2.00 | ≤ 1.0 | **missed** |",
                      text)
        self.assertIn("| transition with a blocked task (ratio) | 0.042 | ≤ 0.15 | met |", text)
        self.assertIn("| transition with a blocked task (seconds) | 0.70 s | ≤ 2.0 | met |", text)
        self.assertIn("| 6.1-test | longest stall (ms) | 1.20 ms | ≤ 1.0 | **missed** |", text)
        self.assertIn("| 700.0 ns | 720.0 ns | 710.0 ns | 1.01 |", text)
        self.assertIn("| idle | 8.0 MiB | 3 ms in 10 s |", text)
        self.assertIn("250 ms per transition", text)
        self.assertIn("medians of 3 runs", text)
        self.assertIn("`scripts/bench --runs 3`", text)
        self.assertIn("**About this run:** a test run", text)
        self.assertEqual(self.plots, ["apply-time.png", "transition-time.png"])
        self.assertIn("![apply-time.png](benchmarks/apply-time.png)", text)

    def test_a_missed_overhead_is_missed(self):
        cost = results()["call_cost"] | {
            "lpshim_patched": samples((41, 10, 30.9), (82, 20, 61.8), (31, 10, 20.6))}
        text = self.render(("k", results(call_cost=cost), None))
        # 3.09/3, 3.09/3, 2.06/2: 1.03 in every round.
        self.assertIn("| k | steady-state call overhead | 1.03 | ≤ 1.0 | **missed** |", text)

    def test_a_ratio_that_rounds_to_the_limit_shows_which_side_it_is_on(self):
        cost = results()["call_cost"] | {
            "lpshim_patched": samples((40.06, 10, 30.09), (80.12, 20, 60.18), (30.06, 10, 20.06))}
        text = self.render(("k", results(call_cost=cost), None))
        # 1.003 in every round: not "1.00 ... missed".
        self.assertIn("| k | steady-state call overhead | 1.003 | ≤ 1.0 | **missed** |", text)

    def test_what_did_not_run_is_not_measured(self):
        partial = {"call_cost": results()["call_cost"]}
        text = self.render(("6.12-test", partial, "blocked_task: the transition did not end"))
        self.assertIn("**The run stopped early:** blocked_task: the transition did not end", text)
        for part in ("2. Time to apply", "3. Transition time", "4. Transition with a user task",
                     "5. Longest scheduling stall", "6. System call cost", "7. livepatchd's"):
            section = text.split(f"### {part}", 1)[1].split("###", 1)[0]
            self.assertIn("Not measured.", section, part)
        # A figure that was not measured is no target met or missed.
        self.assertNotIn("| 6.12-test | apply of 1000 functions", text)
        self.assertEqual(self.plots, [])

    def test_every_kernel_has_its_section_and_targets(self):
        text = self.render(("6.1-a", results(), None), ("6.12-b", results(), None))
        self.assertIn("## 6.1-a", text)
        self.assertIn("## 6.12-b", text)
        self.assertIn("| 6.12-b | apply of 1000 functions |", text)

    def test_the_pending_scale_figures_have_their_targets_and_section(self):
        # issue 18: the vm-slow case's figures at 10,000 and 30,000 pending tasks.
        with tempfile.TemporaryDirectory() as tmp:
            scale = os.path.join(tmp, "pending-scale.txt")
            with open(scale, "w") as f:
                f.write("# kernel: 6.1-test\n# run: 2026-12-04, 4 GB guest.\n"
                        "# measure: 10000 pending: livepatchctl blocking --json listed 10000, "
                        "lpshim's debugfs 10000, in 812 ms\n"
                        "# measure: 10000 pending: the process was seen stopped for 61 ms "
                        "(hold_ms 50)\n"
                        "# measure: 10000 pending: longest event loop dispatch 48 ms\n"
                        "# measure: 30000 pending: livepatchctl blocking --json listed 29999, "
                        "lpshim's debugfs 30000, in 2400 ms\n"
                        "# measure: 30000 pending: the process was stopped for 170 ms "
                        "(hold_ms 50; sched trace)\n"
                        "# measure: 30000 pending: longest event loop dispatch 140 ms\n"
                        "# measure: 30000 pending: longest event loop dispatch not counting waits "
                        "for a CPU 90 ms\n")
            data = {"kernel": "6.1-test", "date": "2026-11-22", "runs": 3, "cpus": 2,
                    "results": results()}
            path = os.path.join(tmp, "r.json")
            with open(path, "w") as f:
                json.dump(data, f)
            md = os.path.join(tmp, "benchmarks.md")
            subprocess.run([REPORT, "--markdown", md, "--plots", os.path.join(tmp, "p"),
                            "--pending-scale", scale, path], check=True, capture_output=True)
            with open(md) as f:
                text = f.read()
        self.assertIn("| 6.1-test | pending view exact at 10,000 tasks | 10,000 of 10,000 | all | met |",
                      text)
        self.assertIn("| 6.1-test | SIGSTOP hold at 10,000 tasks | 61 ms | 50 ± 50 ms | met |", text)
        self.assertIn("| 6.1-test | longest loop dispatch at 10,000 tasks | 48 ms | ≤ 100 ms | met |",
                      text)
        self.assertIn("| 6.1-test | pending view exact at 30,000 tasks | 29,999 of 30,000 | all | "
                      "**missed** |", text)
        self.assertIn("| 6.1-test | SIGSTOP hold at 30,000 tasks | 170 ms | 50 ± 50 ms | **missed** |",
                      text)
        self.assertIn("| 6.1-test | longest loop dispatch at 30,000 tasks | 140 ms | ≤ 100 ms | "
                      "**missed** |", text)
        self.assertIn("## livepatchd with thousands of pending tasks (6.1-test)", text)
        self.assertIn("| 30,000 | 29,999 | 30,000 | 2400 ms | 170 ms (50 ms) | 140 ms | 90 ms |",
                      text)
        # Runs before 3c3cb10 have no such figure.
        self.assertIn("| 10,000 | 10,000 | 10,000 | 812 ms | 61 ms (50 ms) | 48 ms | not measured |",
                      text)
        self.assertIn("2026-12-04, 4 GB guest.", text)


if __name__ == "__main__":
    REPORT = sys.argv.pop(1)
    unittest.main()
