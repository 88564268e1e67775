#!/bin/bash
# bench/run-guest, the guest half of scripts/bench, in one short run: the call cost, one run
# (three rounds). run-guest itself checks that a patched call runs lpshim's version, then
# upstream's; this case checks the results file bench/report reads: this kernel, every series
# with a sample per round, a patched call dearer than its unpatched twin, an unpatched one
# not, and no error.
. "$(dirname "$0")/../lib.sh"

OUT=$(mktemp)
for m in lpshim lpshim_target bench_lpshim bench_klp; do
	[[ ! -e /sys/module/$m ]] || fail "$m is already loaded"
done
bench/run-guest "$BUILD" "$OUT" --runs 1 --only call_cost | sed 's/^/# /' ||
	fail "bench/run-guest failed: $(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("error"))' "$OUT" 2>&1)"
python3 - "$OUT" "$KVER" <<'PY' || fail "the results are not what bench/report reads"
import json, sys
data = json.load(open(sys.argv[1]))
assert data["kernel"] == sys.argv[2], data["kernel"]
assert data["runs"] == 1 and "error" not in data, data
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
PY
ok "bench/run-guest measured 3 rounds of unpatched, lpshim and upstream calls on $KVER"
for m in bench_lpshim bench_klp; do
	[[ ! -e /sys/module/$m ]] || fail "bench/run-guest left $m loaded"
done
rmmod lpshim_target
rmmod lpshim
