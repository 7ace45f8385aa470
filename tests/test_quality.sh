#!/usr/bin/env bash
# Closed-loop quality against thresholds: short trainings from the scripted
# experts, evaluated in MuJoCo on selection seeds (200000.., never the
# 100000.. evaluation seeds that the README reports).
#   avoid: LFM succeeds and takes both ways round the obstacle; MSE, which
#          averages the two modes into the obstacle, stays far below it.
#   lift:  LFM above a success threshold.
# The thresholds leave a wide margin under what these runs reached when the
# test was written (avoid LFM 100% with 28 left / 22 right, MSE 0%; lift 90%;
# with the policies' gamma_1 = 1 of issue 11, avoid needs 3000 steps, not
# 2000: 96% with 26 left / 23 right, where 2000 steps gave 76%; lift 98%),
# so a different BLAS kernel rounding differently does not flip the test,
# while a policy that does not learn fails it. About 40 s in a Release build.
set -u
LFP=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# one eval's JSON members as shell words: success_rate left right refused
s_eval() {
  "$LFP" eval --policy "$1" --episodes 50 --seed 200000 --json 2> /dev/null | tail -n 1 |
    /usr/bin/python3 -c 'import json, sys; e = json.load(sys.stdin); print(e["success_rate"], e.get("left", 0), e.get("right", 0), e["refused"])'
}

"$LFP" collect --env avoid --episodes 100 --seed 0 --out "$tmp/avoid.hdf5" > /dev/null || { echo "FAIL: collect avoid"; exit 1; }
for m in lfm mse; do
  "$LFP" train --data "$tmp/avoid.hdf5" --out "$tmp/avoid.$m.lfp" --method "$m" --steps 3000 > /dev/null \
    || { echo "FAIL: train avoid $m"; exit 1; }
done
read -r lfm_rate lfm_left lfm_right _ <<< "$(s_eval "$tmp/avoid.lfm.lfp")"
read -r mse_rate _ _ _ <<< "$(s_eval "$tmp/avoid.mse.lfp")"
echo "avoid: lfm success $lfm_rate ($lfm_left left, $lfm_right right), mse success $mse_rate"
/usr/bin/python3 - "$lfm_rate" "$lfm_left" "$lfm_right" "$mse_rate" <<'PY' || fail=1
import sys
lfm, left, right, mse = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
checks = {
    "avoid: LFM succeeds in >= 90% of 50 episodes": lfm >= 0.9,
    "avoid: LFM takes both sides (>= 10 episodes each)": left >= 10 and right >= 10,
    "avoid: MSE is at least 40 points below LFM": mse <= lfm - 0.4,
}
for name, ok in checks.items():
    print(("PASS " if ok else "FAIL ") + name)
sys.exit(0 if all(checks.values()) else 1)
PY

"$LFP" collect --env lift --episodes 100 --seed 0 --out "$tmp/lift.hdf5" > /dev/null || { echo "FAIL: collect lift"; exit 1; }
"$LFP" train --data "$tmp/lift.hdf5" --out "$tmp/lift.lfp" --steps 4000 > /dev/null || { echo "FAIL: train lift"; exit 1; }
read -r lift_rate _ _ lift_refused <<< "$(s_eval "$tmp/lift.lfp")"
echo "lift: lfm success $lift_rate ($lift_refused episodes refused)"
/usr/bin/python3 -c '
import sys
ok = float(sys.argv[1]) >= 0.7
print(("PASS " if ok else "FAIL ") + "lift: LFM succeeds in >= 70% of 50 episodes")
sys.exit(0 if ok else 1)' "$lift_rate" || fail=1

[ $fail -eq 0 ] && echo "quality: all checks passed"
exit $fail
