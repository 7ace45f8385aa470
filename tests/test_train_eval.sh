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
    "network named": t.get("net") == "mlp" and t.get("net_desc", "").startswith("mlp width %d depth 3 " % t.get("width", -1)),
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
need = ('env', 'episodes', 'success_rate', 'ci95', 'mean_score', 'mean_len', 'latency_us_p50', 'latency_us_p99', 'contact_full', 'constraint_full', 'net', 'net_desc')
sys.exit(0 if all(k in e for k in need) and e['episodes'] == 3 and e['env'] == 'lift' and 0 <= e['ci95'][0] <= e['ci95'][1] <= 1
         and e['mean_score'] == e['success_rate'] else 1)  # lift's score is its success
" "$(echo "$out" | tail -n 1)" || { echo "FAIL: eval json: $out"; fail=1; }
# dfm (issue 12): one block, Euler-Maruyama at NFE 32 by default, its sampler
# settings in the file, reproducible episodes (the sampler's noise comes from
# the episode's seed)
out=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/dfm.lfp" --method dfm --steps 200 --width 32 --dfm-sigma 0.4 --json) \
  || { echo "FAIL: train dfm: $out"; fail=1; }
e1=$("$LFP" eval --policy "$tmp/dfm.lfp" --episodes 2 --json | tail -n 1)
e2=$("$LFP" eval --policy "$tmp/dfm.lfp" --episodes 2 --jobs 1 --json | tail -n 1)
e3=$("$LFP" eval --policy "$tmp/dfm.lfp" --episodes 2 --ode-steps 4 --json | tail -n 1)
/usr/bin/python3 - "$(echo "$out" | tail -n 1)" "$e1" "$e2" "$e3" <<'PY' || fail=1
import json, sys
t, a, b, c = (json.loads(x) for x in sys.argv[1:5])
ok = {
    "dfm trained": t["method"] == "dfm" and t["blocks"] == 1 and t["nfe"] == 32,
    "eval at NFE 32": a["method"] == "dfm" and a["nfe"] == 32,
    "reproducible": a["digest"] == b["digest"],
    "fewer steps": c["nfe"] == 4,
}
bad = [k for k, v in ok.items() if not v]
if bad: print("FAIL: dfm:", bad, t, a, b, c)
sys.exit(1 if bad else 0)
PY
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
# issue 10: a final validation pass, action bounds from the data, refused settings
out=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/v.lfp" --steps 300 --width 32 --json 2>&1) || { echo "FAIL: train: $out"; fail=1; }
/usr/bin/python3 - "$out" "$tmp/v.lfp.csv" <<'PY' || fail=1
import json, sys, csv, math
text = sys.argv[1]
t = json.loads(text.splitlines()[-1])
last = list(csv.DictReader(open(sys.argv[2])))[-1]
ok = {  # --ckpt-every (1000) > --steps: validation ran only at the end
    "json valid_loss": isinstance(t["valid_loss"], float) and math.isfinite(t["valid_loss"]),
    "summary line": "final validation loss" in text and "loss nan" not in text,
    "csv last row": last["step"] == "300" and last["valid_loss"] not in ("", "nan") and last["block"] == "2",
    "bounds": len(t["action_low"]) == 7 and all(l <= h for l, h in zip(t["action_low"], t["action_high"])),
}
bad = [k for k, v in ok.items() if not v]
if bad: print("FAIL: final validation / bounds:", bad, text)
sys.exit(1 if bad else 0)
PY
# absolute actions: the same demos with actions x 3 keep their range
cp "$tmp/d.hdf5" "$tmp/abs.hdf5"
/usr/bin/python3 -c "
import h5py, sys
with h5py.File(sys.argv[1], 'r+') as f:
    for k in f['data']:
        f['data'][k]['actions'][...] = 3 * f['data'][k]['actions'][...]
" "$tmp/abs.hdf5" || { echo "FAIL: h5py could not scale the actions"; fail=1; }
tr=$("$LFP" train --data "$tmp/abs.hdf5" --out "$tmp/abs.lfp" --steps 300 --width 32 --json) || { echo "FAIL: train abs: $tr"; fail=1; }
ev=$("$LFP" eval --policy "$tmp/abs.lfp" --episodes 1 --json 2>&1) || { echo "FAIL: eval abs: $ev"; fail=1; }
/usr/bin/python3 - "$(echo "$out" | tail -n 1)" "$(echo "$tr" | tail -n 1)" "$ev" <<'PY' || fail=1
import json, sys
one, three, text = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
e = json.loads(text.splitlines()[-1])
near = lambda a, b: all(abs(x - 3 * y) <= 1e-5 * max(1, abs(x)) for x, y in zip(a, b))
ok = {
    "3x the range": near(three["action_low"], one["action_low"]) and near(three["action_high"], one["action_high"]),
    "outside [-1, 1]": max(three["action_high"]) > 1.5 and min(three["action_low"]) < -1.5,
    "eval json": e["action_low"] == three["action_low"] and e["action_high"] == three["action_high"],
    "eval text": "action bounds: [%g, %g]" % (three["action_low"][0], three["action_high"][0]) in text,
}
bad = [k for k, v in ok.items() if not v]
if bad: print("FAIL: absolute actions:", bad, sys.argv[2:])
sys.exit(1 if bad else 0)
PY
out=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/o.lfp" --steps 2 --width 8 --action-low -0.5 --action-high 0.5,0.5,0.5,0.5,0.5,0.5,2 --json) \
  || { echo "FAIL: train with bounds: $out"; fail=1; }
/usr/bin/python3 -c "
import json, sys
t = json.loads(sys.argv[1])
sys.exit(0 if t['action_low'] == [-0.5] * 7 and t['action_high'] == [0.5] * 6 + [2] else 1)
" "$(echo "$out" | tail -n 1)" || { echo "FAIL: bounds override: $out"; fail=1; }
msg=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/o.lfp" --steps 2 --action-low -1,1 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"2 lower action bounds were given for 7 action dimensions"* ]] || { echo "FAIL: bound count -> $rc: $msg"; fail=1; }
msg=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/o.lfp" --steps 2 --action-low 1 --action-high 0.5 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"low must be below high"* ]] || { echo "FAIL: empty bounds -> $rc: $msg"; fail=1; }
msg=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/o.lfp" --action-high 1,x 2>&1); rc=$?
[ $rc = 2 ] && [[ "$msg" == *"--action-high '1,x' is not a comma-separated list"* ]] || { echo "FAIL: bad bound -> $rc: $msg"; fail=1; }
msg=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/o.lfp" --steps 3 --blocks 3 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"8 ODE steps over the chain do not divide evenly among its 3 blocks"* ]] || { echo "FAIL: uneven ode steps -> $rc: $msg"; fail=1; }
msg=$("$LFP" toy --blocks 3 --steps 3 2>&1); rc=$?
[ $rc = 2 ] && [[ "$msg" == *"do not divide evenly among its 3 blocks"* ]] || { echo "FAIL: toy uneven ode steps -> $rc: $msg"; fail=1; }
# observation keys: pusht's policies observe agent_pos and block_keypoints by
# default; any subset of the task's keys trains and evaluates (found by name)
"$LFP" collect --env pusht --episodes 4 --seed 1 --out "$tmp/t.hdf5" > /dev/null || { echo "FAIL: collect pusht"; fail=1; }
out=$("$LFP" train --data "$tmp/t.hdf5" --out "$tmp/t.lfp" --steps 50 --net mlp --width 32 --method fm --json 2>&1) || { echo "FAIL: train pusht: $out"; fail=1; }
[[ "$out" == *"obs agent_pos,block_keypoints"* ]] || { echo "FAIL: pusht default keys: $out"; fail=1; }
# pusht has a recipe (its defaults, shown by --help); the flags given override it
[[ "$out" == *'"recipe": "pusht"'* && "$out" == *'"steps": 50,'* ]] || { echo "FAIL: pusht recipe / override: $out"; fail=1; }
help=$("$LFP" train --data "$tmp/t.hdf5" --help)
[[ "$help" == *"--net {mlp|unet|transformer}"*"(default unet)"* ]] || { echo "FAIL: pusht's recipe network not in --help"; fail=1; }
msg=$("$LFP" train --data "$tmp/t.hdf5" --out "$tmp/x.lfp" --width 32 2>&1); rc=$?
[ $rc = 2 ] && [[ "$msg" == *"--width and --depth are the mlp's and the transformer's; this run trains a unet"* ]] || { echo "FAIL: mlp flags on a unet -> $rc: $msg"; fail=1; }
[[ "$help" != *"--steps N              optimizer steps over all blocks (default 16000)"* ]] || { echo "FAIL: recipe not in --help"; fail=1; }
out=$("$LFP" eval --policy "$tmp/t.lfp" --episodes 1 --json 2>&1) || { echo "FAIL: eval pusht keypoints: $out"; fail=1; }
out=$("$LFP" train --data "$tmp/t.hdf5" --out "$tmp/u.lfp" --steps 50 --net mlp --width 32 --method fm --obs-keys block_pose,agent_pos 2>&1) \
  || { echo "FAIL: train pusht reordered keys: $out"; fail=1; }
out=$("$LFP" eval --policy "$tmp/u.lfp" --episodes 1 --json 2>&1) || { echo "FAIL: eval pusht reordered keys: $out"; fail=1; }
msg=$("$LFP" eval --policy "$tmp/u.lfp" --env lift 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"task lift does not observe 'block_pose'"* ]] || { echo "FAIL: key missing from task -> $rc: $msg"; fail=1; }
# --eval-every: rollouts on selection seeds during training, logged to the
# CSV; OUT.best.lfp is the best of them and scores what lfp eval says it does;
# evaluation seeds are refused
out=$("$LFP" train --data "$tmp/t.hdf5" --out "$tmp/e.lfp" --steps 300 --net mlp --width 32 --method fm --eval-every 100 \
  --eval-episodes 3 --ckpt-every 100 --json 2>&1) || { echo "FAIL: train --eval-every: $out"; fail=1; }
best=$("$LFP" eval --policy "$tmp/e.best.lfp" --episodes 3 --seed 200000 --json 2>&1 | tail -n 1)
last=$("$LFP" eval --policy "$tmp/e.lfp" --episodes 3 --seed 200000 --json 2>&1 | tail -n 1)
/usr/bin/python3 - "$(echo "$out" | tail -n 1)" "$tmp/e.lfp.csv" "$best" "$last" <<'PY' || fail=1
import json, sys, csv
t, rows = json.loads(sys.argv[1]), list(csv.DictReader(open(sys.argv[2])))
best, last = json.loads(sys.argv[3]), json.loads(sys.argv[4])
ev = [r for r in rows if r["score"] != ""]
scores = [float(r["score"]) for r in ev]
ok = {
    "evaluated at 100, 200, 300": [r["step"] for r in ev] == ["100", "200", "300"],
    "best is the max": abs(t["best_score"] - max(scores)) < 1e-6 and t["best_step"] == int(ev[scores.index(max(scores))]["step"]),
    "best file scores it": abs(best["mean_score"] - t["best_score"]) < 1e-6,
    "final is the saved policy": abs(last["mean_score"] - t["final_score"]) < 1e-6 and abs(scores[-1] - t["final_score"]) < 1e-6,
    "train_s logged": all(float(r["train_s"]) > 0 for r in ev),
    "eval cost": t["eval_s"] > 0,
}
bad = [k for k, v in ok.items() if not v]
if bad: print("FAIL: --eval-every:", bad, t, ev)
sys.exit(1 if bad else 0)
PY
msg=$("$LFP" train --data "$tmp/t.hdf5" --out "$tmp/e.lfp" --eval-every 100 --eval-seed 100000 2>&1); rc=$?
[ $rc = 2 ] && [[ "$msg" == *"--eval-seed must be between 200000"* ]] || { echo "FAIL: eval seeds for selection -> $rc: $msg"; fail=1; }
# --record: the episodes as demos that replay exactly, with success / failure masks
out=$("$LFP" eval --policy "$tmp/t.lfp" --episodes 3 --seed 200000 --record "$tmp/rec.hdf5" --json 2>&1) \
  || { echo "FAIL: eval --record: $out"; fail=1; }
"$LFP" replay "$tmp/rec.hdf5" > /dev/null || { echo "FAIL: recorded episodes do not replay"; fail=1; }
/usr/bin/python3 - "$tmp/rec.hdf5" "$(echo "$out" | tail -n 1)" <<'PY' || fail=1
import h5py, json, sys
e = json.loads(sys.argv[2])
with h5py.File(sys.argv[1], "r") as f:
    demos = sorted(f["data"].keys())
    succ = [m.decode() for m in f["mask/success"][()]] if "mask/success" in f else []
    fail = [m.decode() for m in f["mask/failure"][()]] if "mask/failure" in f else []
    lens = [f["data"][d]["actions"].shape[0] for d in demos]
ok = len(demos) == 3 and len(succ) == round(e["success_rate"] * 3) and sorted(succ + fail) == demos \
     and abs(sum(lens) / 3 - e["mean_len"]) < 1e-9
if not ok: print("FAIL: recorded file", demos, succ, fail, lens, e["mean_len"])
sys.exit(0 if ok else 1)
PY
# the U-Net kind: trains (fm, and lfm blocks matched in size), evaluates, and its options are checked
for m in fm lfm; do
  out=$("$LFP" train --data "$tmp/t.hdf5" --out "$tmp/un.$m.lfp" --net unet --unet-dims 16,32 --method $m --steps 40 --json 2>&1) \
    || { echo "FAIL: train --net unet --method $m: $out"; fail=1; }
  [[ "$out" == *'"net": "unet"'* && "$out" == *"unet dims "* ]] || { echo "FAIL: unet json: $out"; fail=1; }
  out=$("$LFP" eval --policy "$tmp/un.$m.lfp" --episodes 1 --seed 200000 --json 2>&1) || { echo "FAIL: eval unet $m: $out"; fail=1; }
done
msg=$("$LFP" train --data "$tmp/t.hdf5" --out "$tmp/x.lfp" --net mlp --unet-dims 16,32 2>&1); rc=$?
[ $rc = 2 ] && [[ "$msg" == *"--unet-dims '16,32' needs --net unet"* ]] || { echo "FAIL: unet dims without unet -> $rc: $msg"; fail=1; }
msg=$("$LFP" train --data "$tmp/t.hdf5" --out "$tmp/x.lfp" --net unet --Tp 6 --Ta 4 --unet-dims 16,32,64 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"divisible"* ]] || { echo "FAIL: unet horizon -> $rc: $msg"; fail=1; }
[ $fail = 0 ] && echo "all train/eval checks passed"
exit $fail
