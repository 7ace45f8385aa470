#!/usr/bin/env bash
# lfp info: the human summary, the --json object (parsed by Python), and errors.
set -u
LFP=$1 DS_TOOL=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
"$DS_TOOL" write "$tmp/d.hdf5" 4 || { echo "FAIL: ds_tool write"; exit 1; }

out=$("$LFP" info "$tmp/d.hdf5") || { echo "FAIL: lfp info exit $?"; fail=1; }
for want in "demos      4" "samples    38" "object" "robot0_eef_pos" "train (3 demos)" "env_name"; do
  [[ "$out" == *"$want"* ]] || { echo "FAIL: summary lacks '$want'"; fail=1; }
done

"$LFP" info "$tmp/d.hdf5" --json | tail -n 1 > "$tmp/info.json"
/usr/bin/python3 - "$tmp/info.json" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
checks = {
    "demos": d["demos"] == 4,
    "samples": d["samples"] == 38,
    "obs shapes": d["obs"] == {"object": {"shape": [10], "dtype": "float64"},
                               "robot0_eef_pos": {"shape": [3], "dtype": "float64"}},
    "action_dim": d["action_dim"] == 7,
    "env_args parsed": d["env_args"]["env_name"] == "lift" and d["env_args"]["env_kwargs"]["horizon"] == 400,
    "masks": d["masks"] == {"train": 3, "valid": 1},
    "length": d["length"] == {"min": 5, "mean": 9.5, "max": 14},
}
bad = [k for k, ok in checks.items() if not ok]
print("FAIL: info --json:", bad) if bad else None
sys.exit(1 if bad else 0)
PY

# errors: one sentence, non-zero exit
echo "not hdf5" > "$tmp/t.hdf5"
msg=$("$LFP" info "$tmp/t.hdf5" 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"is not an HDF5 file"* ]] || { echo "FAIL: text file -> $rc: $msg"; fail=1; }
msg=$("$LFP" info "$tmp/missing.hdf5" 2>&1); rc=$?
[ $rc = 1 ] && [[ "$msg" == *"cannot open"* ]] || { echo "FAIL: missing file -> $rc: $msg"; fail=1; }
msg=$("$LFP" info 2>&1); rc=$?
[ $rc = 2 ] && [[ "$msg" == *"which file"* ]] || { echo "FAIL: no file -> $rc: $msg"; fail=1; }
[ $fail = 0 ] && echo "all lfp info checks passed"
exit $fail
