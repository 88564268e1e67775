#!/bin/bash
# bench/run-guest, the guest half of scripts/bench, in one short run: every benchmark, one run
# at its smallest sizes (--small). run-guest itself checks that a patched call runs lpshim's
# version, then upstream's, and that a patch replaced every function; this case checks the
# results file: this kernel, every figure with its samples, a patched call dearer than its
# unpatched twin, an unpatched one not, and no error. Then bench/report renders every section
# from it, and its plots.
. "$(dirname "$0")/../lib.sh"

OUT=$(mktemp)
for m in lpshim lpshim_target bench_lpshim bench_klp; do
	[[ ! -e /sys/module/$m ]] || fail "$m is already loaded"
done
bench/run-guest "$BUILD" "$OUT" --runs 1 --small | sed 's/^/# /' ||
	fail "bench/run-guest failed: $(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("error"))' "$OUT" 2>&1)"
python3 - "$OUT" "$KVER" <<'PY' || fail "the results are not what bench/report reads"
import json, sys
data = json.load(open(sys.argv[1]))
assert data["kernel"] == sys.argv[2], data["kernel"]
assert data["runs"] == 1 and "error" not in data, data
# What ran the guest, for the report's header: tests/vm/run boots it under QEMU TCG.
assert data["virt"] == "qemu", data["virt"]
cost = data["results"]["call_cost"]
series = ["unpatched", "lpshim_patched", "lpshim_transition", "upstream_patched", "upstream_transition"]
assert sorted(cost) == sorted(series), sorted(cost)
for name in series:
    assert len(cost[name]) == 3, (name, cost[name])
    assert all(s["ns"] > 0 and s["twin_ns"] > 0 for s in cost[name]), (name, cost[name])
# A patched call costs more than its unpatched twin timed in the same bursts; with nothing
# patched, bench_fn and the twin cost the same within the emulator's noise.
for name in series[1:]:
    assert all(s["overhead_ns"] > 0.1 * s["twin_ns"] and s["overhead_per_twin"] > 0.1
               for s in cost[name]), (name, cost[name])
assert all(abs(s["overhead_ns"]) < 0.5 * s["twin_ns"] and abs(s["overhead_per_twin"]) < 0.5
           for s in cost["unpatched"]), cost["unpatched"]

def one_positive(samples, what):
    assert len(samples) == 1 and samples[0] > 0, (what, samples)

r = data["results"]
for system in ("lpshim", "upstream"):
    for n in (1, 10):
        for kind in ("apply_s", "revert_s"):
            one_positive(r["apply_revert"][f"{system}_{n}"][kind], (system, n, kind))
    one_positive(r["sleeping_tasks"][f"{system}_100"], (system, "sleeping tasks"))
    one_positive(r["syscall_cost"][system], (system, "syscall cost"))
    one_positive(r["stall_probe"][system], (system, "stall"))
    one_positive(r["blocked_task"][system], (system, "blocked task"))
one_positive(r["syscall_cost"]["idle"], "syscall cost, no transition")
one_positive(r["stall_probe"]["idle"], "stall, nothing applied")
daemon = r["blocked_task"]
assert daemon["daemon_idle"]["rss_kib"] > 0 and daemon["daemon_idle"]["cpu_ms_per_10s"] >= 0, daemon
assert daemon["daemon_transition"]["rss_kib"] > 0, daemon
PY
ok "bench/run-guest ran every benchmark on $KVER: call cost, apply and revert, sleeping tasks, stall, syscall cost, blocked task, livepatchd's footprint"

MD=$(mktemp -d)
bench/report --markdown "$MD/benchmarks.md" --plots "$MD/plots" "$OUT" | sed 's/^/# /' ||
	fail "bench/report cannot render the results"
for section in '1. ns per call' '2. Time to apply' '3. Transition time' '4. Transition with a user task' \
	'5. Longest scheduling stall' '6. System call cost' "7. livepatchd's footprint"; do
	sed -n "/^### $section/,/^###/p" "$MD/benchmarks.md" | grep -q '^|' ||
		fail "bench/report shows no figures under '$section': $(sed -n "/^### $section/,/^###/p" "$MD/benchmarks.md")"
done
ok "bench/report shows figures in every section"
for png in apply-time.png transition-time.png; do
	[[ -s $MD/plots/$png ]] || fail "bench/report drew no $png"
done
ok "bench/report drew the apply-time and transition-time plots"
for m in bench_lpshim bench_klp; do
	[[ ! -e /sys/module/$m ]] || fail "bench/run-guest left $m loaded"
done
rmmod lpshim_target
rmmod lpshim
