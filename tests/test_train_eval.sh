#!/usr/bin/env bash
# A short end-to-end run: collect a few lift demos, train briefly, evaluate a
# few episodes in MuJoCo; then the errors of train and eval.
set -u
LFP=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
"$LFP" collect --env lift --episodes 10 --seed 1 --out "$tmp/d.hdf5" > /dev/null || { echo "FAIL: collect"; exit 1; }
out=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/p.lfp" --steps 300 --width 64 --ckpt-every 100 --json) \
  || { echo "FAIL: train: $out"; exit 1; }
/usr/bin/python3 - "$(echo "$out" | tail -n 1)" "$tmp/p.lfp.csv" <<'PY' || fail=1
import json, sys, csv
t = json.loads(sys.argv[1])
rows = list(csv.DictReader(open(sys.argv[2])))
ok = {
    "json": all(k in t for k in ("method", "blocks", "params", "steps", "train_s", "nfe")) and t["steps"] == 300,
    "log rows": len(rows) >= 3 and rows[-1]["step"] == "300",
    "valid loss logged": any(r["valid_loss"] not in ("", "nan") for r in rows),
}
bad = [k for k, v in ok.items() if not v]
if bad: print("FAIL: train output:", bad)
sys.exit(1 if bad else 0)
PY
[ ! -e "$tmp/p.lfp.ckpt" ] || { echo "FAIL: the checkpoint of a finished run was left behind"; fail=1; }
out=$("$LFP" eval --policy "$tmp/p.lfp" --episodes 3 --json) || { echo "FAIL: eval: $out"; fail=1; }
/usr/bin/python3 -c "
import json, sys
e = json.loads(sys.argv[1])
need = ('env', 'episodes', 'success_rate', 'ci95', 'mean_len', 'latency_us_p50', 'latency_us_p99', 'contact_full', 'constraint_full')
sys.exit(0 if all(k in e for k in need) and e['episodes'] == 3 and e['env'] == 'lift' and 0 <= e['ci95'][0] <= e['ci95'][1] <= 1 else 1)
" "$(echo "$out" | tail -n 1)" || { echo "FAIL: eval json: $out"; fail=1; }
# errors
msg=$("$LFP" eval --policy "$tmp/p.lfp" --env avoid 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"does not fit task avoid"* ]] || { echo "FAIL: wrong env -> $rc: $msg"; fail=1; }
msg=$("$LFP" eval --policy "$tmp/d.hdf5" 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"not an lfp checkpoint"* ]] || { echo "FAIL: not a policy -> $rc: $msg"; fail=1; }
msg=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/q.lfp" --obs-keys object,nope 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"no observation key 'nope'"* ]] || { echo "FAIL: bad key -> $rc: $msg"; fail=1; }
msg=$("$LFP" train --data "$tmp/d.hdf5" 2>&1); rc=$?
[ $rc = 2 ] && [[ "$msg" == *"--out"* ]] || { echo "FAIL: no --out -> $rc: $msg"; fail=1; }
msg=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/q.lfp" --resume 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"no checkpoint"* ]] || { echo "FAIL: resume without checkpoint -> $rc: $msg"; fail=1; }
[ $fail = 0 ] && echo "all train/eval checks passed"
exit $fail
