#!/usr/bin/env bash
# lfp collect -> file -> lfp info / lfp replay, end to end, and collect's errors.
set -u
LFP=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
out=$("$LFP" collect --env lift --episodes 12 --seed 3 --out "$tmp/l.hdf5" --jobs 2 --json) || { echo "FAIL: collect: $out"; exit 1; }
echo "$out" | tail -n 1 > "$tmp/c.json"
/usr/bin/python3 - "$tmp/c.json" "$tmp/l.hdf5" <<'PY' || fail=1
import json, sys, h5py, numpy as np
c = json.load(open(sys.argv[1]))
f = h5py.File(sys.argv[2], "r")
env = json.loads(f["data"].attrs["env_args"])
demos = sorted(f["data"].keys(), key=lambda n: int(n.split("_")[1]))
checks = {
    "json keys": all(k in c for k in ("env", "attempted", "episodes_written", "expert_success_rate", "dropped_unstable",
                                      "contact_full", "constraint_full", "seconds")),
    "no contacts lost": c["contact_full"] == 0 and c["constraint_full"] == 0,
    "written": c["episodes_written"] == 12 and len(demos) == 12,
    "env_args": env["env_name"] == "lift" and "horizon" in env["env_kwargs"] and "lfp_version" in env,
    "masks 90/10": len(f["mask/train"]) + len(f["mask/valid"]) == 12 and len(f["mask/valid"]) == 1,
    "total": int(f["data"].attrs["total"]) == sum(f["data"][d]["actions"].shape[0] for d in demos),
    "next_obs": all(np.array_equal(f["data"][d]["next_obs/object"][:-1], f["data"][d]["obs/object"][1:]) for d in demos),
    "dones": all(f["data"][d]["dones"][-1] == 1 and f["data"][d]["dones"][:-1].sum() == 0 for d in demos),
    "success reward": all(f["data"][d]["rewards"][-1] == 1.0 for d in demos),
    "model_file": "<mujoco" in f["data"]["demo_0"].attrs["model_file"],
    "actions in [-1, 1]": all(np.abs(f["data"][d]["actions"][()]).max() <= 1.0 for d in demos),
}
bad = [k for k, ok in checks.items() if not ok]
if bad: print("FAIL: collect file:", bad)
sys.exit(1 if bad else 0)
PY
r=$("$LFP" replay "$tmp/l.hdf5" --json | tail -n 1)
/usr/bin/python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d['demos']==12 and d['max_state_deviation'] == 0 else 1)" "$r" \
  || { echo "FAIL: replay: $r"; fail=1; }
# the same seed with another number of threads gives the same demonstrations
"$LFP" collect --env lift --episodes 12 --seed 3 --out "$tmp/m.hdf5" --jobs 1 > /dev/null || fail=1
/usr/bin/python3 - "$tmp/l.hdf5" "$tmp/m.hdf5" <<'PY' || { echo "FAIL: --jobs changed the file"; fail=1; }
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
def same(x, y):
    if isinstance(x, h5py.Dataset): return np.array_equal(x[()], y[()])
    return set(x) == set(y) and all(same(x[k], y[k]) for k in x)
sys.exit(0 if same(a, b) else 1)
PY
# can: robomimic's Can keys, and its demos replay too
out=$("$LFP" collect --env can --episodes 4 --seed 3 --out "$tmp/c.hdf5" --json | tail -n 1) || { echo "FAIL: collect can: $out"; fail=1; }
/usr/bin/python3 - "$out" "$tmp/c.hdf5" <<'PY' || fail=1
import json, sys, h5py
c, f = json.loads(sys.argv[1]), h5py.File(sys.argv[2], "r")
d = f["data"]["demo_0"]
checks = {
    "written, nothing lost": c["episodes_written"] == 4 and c["dropped_unstable"] == 0 and c["contact_full"] == 0
                             and c["constraint_full"] == 0,
    "env_args": json.loads(f["data"].attrs["env_args"])["env_name"] == "can",
    "keys": {k: d["obs"][k].shape[1] for k in d["obs"]} == {"object": 14, "robot0_eef_pos": 3, "robot0_eef_quat": 4,
                                                             "robot0_gripper_qpos": 2},
    "quaternions w >= 0": all((f["data"][n]["obs/object"][:, i] >= 0).all() for n in f["data"] for i in (6, 13)),
}
bad = [k for k, ok in checks.items() if not ok]
if bad: print("FAIL: collect can:", bad)
sys.exit(1 if bad else 0)
PY
r=$("$LFP" replay "$tmp/c.hdf5" --json | tail -n 1)
/usr/bin/python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d['env']=='can' and d['demos']==4 and d['max_state_deviation'] == 0 else 1)" "$r" \
  || { echo "FAIL: replay can: $r"; fail=1; }
# errors
msg=$("$LFP" collect --env lift --episodes 5 --seed 99998 --out "$tmp/x.hdf5" 2>&1); rc=$?
[ $rc = 2 ] && [[ "$msg" == *"evaluation seeds"* ]] || { echo "FAIL: eval seeds -> $rc: $msg"; fail=1; }
msg=$("$LFP" collect --env lift --episodes 5 2>&1); rc=$?
[ $rc = 2 ] && [[ "$msg" == *"--out"* ]] || { echo "FAIL: no --out -> $rc: $msg"; fail=1; }
msg=$("$LFP" collect --env juggle --out "$tmp/x.hdf5" 2>&1); rc=$?
[ $rc = 2 ] && [[ "$msg" == *"--env must be one of"* ]] || { echo "FAIL: bad env -> $rc: $msg"; fail=1; }
msg=$("$LFP" collect --env lift --episodes 2 --out /nonexistent/x.hdf5 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"/nonexistent/x.hdf5"* ]] || { echo "FAIL: bad path -> $rc: $msg"; fail=1; }
msg=$("$LFP" replay "$tmp/l.hdf5" --demo 999 2>&1); rc=$?
[ $rc = 2 ] && [[ "$msg" == *"demo_999"* ]] || { echo "FAIL: replay missing demo -> $rc: $msg"; fail=1; }
[ $fail = 0 ] && echo "all collect/replay checks passed"
exit $fail
