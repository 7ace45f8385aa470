#!/usr/bin/env bash
# lfp distill end to end: a short lfm teacher on lift demos, its student
# (NFE = blocks, recorded teacher, evaluates unchanged) and the errors of
# the command.
set -u
LFP=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
"$LFP" collect --env lift --episodes 6 --seed 1 --out "$tmp/d.hdf5" > /dev/null || { echo "FAIL: collect"; exit 1; }
"$LFP" train --data "$tmp/d.hdf5" --out "$tmp/t.lfp" --steps 200 --width 32 > /dev/null || { echo "FAIL: train"; exit 1; }
out=$("$LFP" distill --policy "$tmp/t.lfp" --data "$tmp/d.hdf5" --out "$tmp/s.lfp" --steps 60 --batch 64 --ckpt-every 20 --json) \
  || { echo "FAIL: distill: $out"; exit 1; }
ev=$("$LFP" eval --policy "$tmp/s.lfp" --episodes 2 --json 2>&1) || { echo "FAIL: eval of the student: $ev"; fail=1; }
/usr/bin/python3 - "$(echo "$out" | tail -n 1)" "$(echo "$ev" | tail -n 1)" "$tmp/s.lfp.csv" "$ev" <<'PY' || fail=1
import json, sys, csv, math
d, e = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rows = list(csv.DictReader(open(sys.argv[3])))
ok = {
    "student NFE = blocks": d["nfe"] == d["blocks"] == 2 and d["teacher_nfe"] == 32,
    "json fields": all(k in d for k in ("teacher", "steps", "train_s", "train_loss", "valid_loss")) and d["steps"] == 60,
    "finite losses": math.isfinite(d["train_loss"]) and math.isfinite(d["valid_loss"]),
    "log": rows[-1]["step"] == "60" and rows[-1]["block"] == "2",
    "eval runs it at NFE 2": e["nfe"] == 2 and e["distilled_from"].endswith("t.lfp") and e["teacher_nfe"] == 32,
    "eval text names the teacher": "distilled from" in sys.argv[4],
}
bad = [k for k, v in ok.items() if not v]
if bad: print("FAIL: distill output:", bad, d, e)
sys.exit(1 if bad else 0)
PY
# a pool of teacher pairs: recorded, reported, evaluated unchanged
out=$("$LFP" distill --policy "$tmp/t.lfp" --data "$tmp/d.hdf5" --out "$tmp/p.lfp" --steps 40 --batch 32 --pairs 96 --json 2>&1) \
  || { echo "FAIL: distill --pairs: $out"; fail=1; }
[[ "$out" == *"a pool of 96 teacher pairs per block"* && "$(echo "$out" | tail -n 1)" == *'"pairs": 96'* ]] \
  || { echo "FAIL: distill --pairs output: $out"; fail=1; }
ev=$("$LFP" eval --policy "$tmp/p.lfp" --episodes 1 2>&1) && [[ "$ev" == *"a pool of 96 teacher pairs"* ]] \
  || { echo "FAIL: eval of a pooled student: $ev"; fail=1; }
msg=$("$LFP" distill --policy "$tmp/t.lfp" --data "$tmp/d.hdf5" --out "$tmp/x.lfp" --pairs -1 2>&1); rc=$?
[ $rc = 2 ] && [[ "$msg" == *"--pairs"* ]] || { echo "FAIL: --pairs -1 -> $rc: $msg"; fail=1; }
[ ! -e "$tmp/s.lfp.ckpt" ] || { echo "FAIL: the checkpoint of a finished distillation was left behind"; fail=1; }
# (resuming is checked bit for bit in test_policy's
# distilled_policy_reloads_bit_for_bit_and_resumes: the CLI shares lfp
# train's loop, tools/train_loop.c)
# errors
msg=$("$LFP" distill --policy "$tmp/t.lfp" --data "$tmp/d.hdf5" 2>&1); rc=$?
[ $rc = 2 ] && [[ "$msg" == *"--out"* ]] || { echo "FAIL: no --out -> $rc: $msg"; fail=1; }
msg=$("$LFP" distill --policy "$tmp/t.lfp" --data "$tmp/d.hdf5" --out "$tmp/t.lfp" 2>&1); rc=$?
[ $rc = 2 ] && [[ "$msg" == *"overwrite the teacher"* ]] || { echo "FAIL: out = teacher -> $rc: $msg"; fail=1; }
msg=$("$LFP" distill --policy "$tmp/s.lfp" --data "$tmp/d.hdf5" --out "$tmp/x.lfp" --steps 10 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"itself distilled"* ]] || { echo "FAIL: distilled teacher -> $rc: $msg"; fail=1; }
"$LFP" train --data "$tmp/d.hdf5" --out "$tmp/m.lfp" --method mse --steps 20 --width 16 > /dev/null
msg=$("$LFP" distill --policy "$tmp/m.lfp" --data "$tmp/d.hdf5" --out "$tmp/x.lfp" --steps 10 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"nothing to distill"* ]] || { echo "FAIL: mse teacher -> $rc: $msg"; fail=1; }
"$LFP" train --data "$tmp/d.hdf5" --out "$tmp/f.lfp" --method dfm --steps 20 --width 16 > /dev/null
msg=$("$LFP" distill --policy "$tmp/f.lfp" --data "$tmp/d.hdf5" --out "$tmp/x.lfp" --steps 10 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"distillation takes a flow"* ]] || { echo "FAIL: dfm teacher -> $rc: $msg"; fail=1; }
msg=$("$LFP" distill --policy "$tmp/d.hdf5" --data "$tmp/d.hdf5" --out "$tmp/x.lfp" 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"not an lfp checkpoint"* ]] || { echo "FAIL: not a policy -> $rc: $msg"; fail=1; }
"$LFP" collect --env avoid --episodes 2 --seed 1 --out "$tmp/a.hdf5" > /dev/null
msg=$("$LFP" distill --policy "$tmp/t.lfp" --data "$tmp/a.hdf5" --out "$tmp/x.lfp" 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"observation key"* ]] || { echo "FAIL: other task's data -> $rc: $msg"; fail=1; }
msg=$("$LFP" distill --policy "$tmp/t.lfp" --data "$tmp/d.hdf5" --out "$tmp/r.lfp" --steps 60 --batch 32 --resume 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"no checkpoint"* ]] || { echo "FAIL: resume without checkpoint -> $rc: $msg"; fail=1; }
[ $fail = 0 ] && echo "distill: ok"
exit $fail
