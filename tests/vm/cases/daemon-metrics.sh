#!/bin/bash
# livepatchd's Prometheus metrics as node_exporter serves them (issue 21, docs/metrics.md):
# prometheus-node-exporter runs as its own user with its textfile collector on Debian's
# directory, where livepatchd.service writes livepatchd.prom (metrics.textfile's default, opened
# to the service by its ReadWritePaths=). Scraped over HTTP: lpshim loaded and its version at
# start; an apply (the patch applied, a transition completed, its duration observed); a stall
# (a parked kthread asleep in the patched function, on_stall: wait): State stalled, the pending
# task, the stall counted, the kick rung and the task the stop rung would not stop; its end;
# the file parsed by node_exporter without error and never a temporary left beside it; and
# livepatchd_running 0 once the service stopped.
. "$(dirname "$0")/../lib.sh"

C=test_lpshim_consistency
T=/sys/kernel/debug/lpshim_target
CONF=/etc/livepatchd/livepatchd.json
DIR=/var/lib/prometheus/node-exporter
EXPORTER=lpvm-node-exporter
SCRAPE=$(mktemp)

[[ -x /usr/bin/prometheus-node-exporter ]] ||
	fail "no /usr/bin/prometheus-node-exporter: scripts/install-deps installs prometheus-node-exporter on the host, whose root the guest shares"
[[ -d $DIR ]] || fail "no $DIR: the prometheus-node-exporter package makes it"

cleanup() {
	systemctl stop $EXPORTER 2>/dev/null || true
	rm -f $CONF "$SCRAPE"
}
trap cleanup EXIT

# scrape: node_exporter's /metrics into $SCRAPE.
scrape() {
	python3 -c '
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:9100/metrics", timeout=5).read().decode())' >"$SCRAPE"
}
# serves LINE: node_exporter serves this exact sample line now.
serves() { scrape && grep -qxF "$1" "$SCRAPE"; }
expect_served() { # LINE WITHIN_SECONDS
	wait_until "${2:-10}" "node_exporter serves '$1'" serves "$1"
	ok "node_exporter serves $1"
}
value_of() { # SERIES: its value in the last scrape
	awk -v s="$1" 'index($0, s " ") == 1 { print substr($0, length(s) + 2) }' "$SCRAPE"
}

"$(dirname "$0")/../install-livepatchd" "$BUILD"
mkdir -p "$(dirname $CONF)"
echo '{"transition": {"stall_timeout_ms": 3000, "on_stall": "wait"}}' >$CONF
rm -f $DIR/livepatchd.prom
systemctl start livepatchd
systemd-run --quiet --unit=$EXPORTER -p User=prometheus \
	/usr/bin/prometheus-node-exporter --web.listen-address=127.0.0.1:9100 \
	--collector.disable-defaults --collector.textfile --collector.textfile.directory=$DIR
wait_until 20 "node_exporter answers" scrape

echo "# at start"
expect_served "livepatchd_running 1"
expect_served "livepatchd_shim_loaded 1"
expect_served "livepatchd_shim_info{version=\"$(cat /sys/module/lpshim/version)\"} 1"
expect_served "livepatchd_kernel_info{release=\"$KVER\"} 1"
expect_served 'livepatchd_state{state="idle"} 1'
expect_eq "$(stat -c %a $DIR/livepatchd.prom)" 644 "livepatchd.prom is readable to node_exporter's user"

echo "# an apply"
insmod "$(module_path lpshim_target)"
livepatchctl install "$(module_path $C)" >/dev/null
expect_served "livepatchd_patch_state{patch=\"$C\",state=\"installed\"} 1"
livepatchctl apply $C >/dev/null || fail "the apply did not complete"
expect_served "livepatchd_patch_state{patch=\"$C\",state=\"applied\"} 1"
expect_served 'livepatchd_transitions_total{outcome="completed",target="patched"} 1'
expect_served 'livepatchd_transition_duration_seconds_count{target="patched"} 1'
livepatchctl revert $C >/dev/null || fail "the revert did not complete"
expect_served "livepatchd_patch_state{patch=\"$C\",state=\"installed\"} 1"
expect_served 'livepatchd_transitions_total{outcome="completed",target="unpatched"} 1'

echo "# a stall"
echo 1 >$T/kthread_park
wait_until 10 "the kthread is parked" grep -qx 1 $T/kthread_park
livepatchctl apply --no-block $C
expect_served "livepatchd_patch_state{patch=\"$C\",state=\"applying\"} 1"
expect_served 'livepatchd_state{state="stalled"} 1' 20
expect_served 'livepatchd_transition_stalls_total 1'
scrape
[[ $(value_of livepatchd_transition_pending_tasks) -ge 1 ]] ||
	fail "livepatchd_transition_pending_tasks is $(value_of livepatchd_transition_pending_tasks) during the stall"
ok "the stalled transition's pending tasks are served ($(value_of livepatchd_transition_pending_tasks))"
[[ $(value_of 'livepatchd_remediation_actions_total{rung="kick"}') -ge 1 ]] ||
	fail "no kick counted during the stall"
ok "the kick rung is counted ($(value_of 'livepatchd_remediation_actions_total{rung="kick"}'))"
[[ $(value_of livepatchd_remediation_tasks_not_stopped_total) -ge 1 ]] ||
	fail "the parked kthread is not counted as a task not stopped"
ok "the parked kthread is counted as a task the stop rung would not stop"
echo 0 >$T/kthread_park
expect_served "livepatchd_patch_state{patch=\"$C\",state=\"applied\"} 1" 20
expect_served 'livepatchd_state{state="idle"} 1'
expect_served 'livepatchd_transitions_total{outcome="completed",target="patched"} 2'
expect_served 'livepatchd_transition_stalls_total 1'
expect_served 'node_textfile_scrape_error 0'
expect_eq "$(ls -A $DIR)" livepatchd.prom "nothing but livepatchd.prom in $DIR"

livepatchctl revert $C >/dev/null || fail "the revert did not complete"
remove_patch() { livepatchctl remove $C >/dev/null; }
wait_until 10 "the patch can be removed" remove_patch
# Removed only once livepatchd removed its module, a moment after the revert's end (s84: the
# store's copy went first, and the module stayed loaded for good).
[[ ! -e /sys/module/$C ]] || fail "$C was removed while its module is still loaded"
ok "the patch is removed once its module is gone"
expect_served "livepatchd_patches{state=\"applied\"} 0"
systemctl stop livepatchd
expect_served "livepatchd_running 0"
rm -f $DIR/livepatchd.prom
rmmod lpshim_target
wait_until 10 "nothing holds lpshim" grep -sqx 0 /sys/module/lpshim/refcnt
rmmod lpshim
