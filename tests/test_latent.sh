#!/usr/bin/env bash
# lfp train --latent and --net transformer end to end on lift demos: each
# trains, reports its sizes, evaluates, distills (latent) and replays in
# lfp sim unchanged; and the usage errors of their flags, one sentence each.
set -u
LFP=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; kill $SERVE 2> /dev/null' EXIT
SERVE=
fail=0
"$LFP" collect --env lift --episodes 6 --seed 1 --out "$tmp/d.hdf5" > /dev/null || { echo "FAIL: collect"; exit 1; }
# a latent flow: 8 values for Tp 16 x 7 = 112
out=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/l.lfp" --method fm --latent 8 --ae-width 32 --ae-steps 200 \
  --steps 120 --width 32 --json 2>&1) || { echo "FAIL: train --latent: $out"; exit 1; }
[[ "$out" == *"latent flow: 8 values for 112-value chunks, autoencoder width 32"* ]] || { echo "FAIL: train text: $out"; fail=1; }
ev=$("$LFP" eval --policy "$tmp/l.lfp" --episodes 2 --json 2>&1) || { echo "FAIL: eval of a latent policy: $ev"; fail=1; }
[[ "$ev" == *"flowing in a latent of 8 values"* ]] || { echo "FAIL: eval text: $ev"; fail=1; }
# the same policy samples the same served by a node to lfp sim in lockstep
"$LFP" serve --policy "$tmp/l.lfp" --bind "tcp://127.0.0.1:*" > "$tmp/serve.log" 2>&1 &
SERVE=$!
ep=
for _ in $(seq 100); do
  grep -q "protocol [0-9]" "$tmp/serve.log" 2> /dev/null && { ep=$(sed -n 's/.* on \(tcp:[^,]*\), protocol [0-9].*/\1/p' "$tmp/serve.log"); break; }
  sleep 0.1
done
[ -n "$ep" ] || { echo "FAIL: serve of a latent policy did not start: $(cat "$tmp/serve.log")"; exit 1; }
sim=$("$LFP" sim --connect "$ep" --episodes 2 --json 2>&1) || { echo "FAIL: sim of a latent policy: $sim"; fail=1; }
kill $SERVE
/usr/bin/python3 - "$(echo "$out" | tail -n 1)" "$(echo "$ev" | tail -n 1)" "$(echo "$sim" | tail -n 1)" <<'PY' || fail=1
import json, math, sys
t, e, s = (json.loads(a) for a in sys.argv[1:4])
ok = {
    "train json": t["latent"] == 8 and t["chunk_values"] == 112 and t["ae_params"] > 0 and t["ae_steps"] == 200 and math.isfinite(t["ae_valid_mse"]),
    "flow over 8 values": t["net_desc"].startswith("mlp width 32"),
    "eval json": e["latent"] == 8 and e["episodes"] == 2,
    "sim equals eval": s["digest"] == e["digest"],
}
bad = [k for k, v in ok.items() if not v]
if bad: print("FAIL: latent outputs:", bad, t, e, s)
sys.exit(1 if bad else 0)
PY
dout=$("$LFP" distill --policy "$tmp/l.lfp" --data "$tmp/d.hdf5" --out "$tmp/ls.lfp" --steps 30 --batch 32 2>&1) \
  || { echo "FAIL: distill of a latent teacher: $dout"; fail=1; }
ev=$("$LFP" eval --policy "$tmp/ls.lfp" --episodes 1 2>&1) && [[ "$ev" == *"flowing in a latent of 8 values"* ]] \
  || { echo "FAIL: eval of a latent student: $ev"; fail=1; }
# a transformer
out=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/t.lfp" --method fm --net transformer --width 16 --depth 1 --heads 2 \
  --steps 40 --json) || { echo "FAIL: train --net transformer: $out"; exit 1; }
[[ "$(echo "$out" | tail -n 1)" == *'"net_desc": "transformer width 16 depth 1 heads 2 ffn 64 film gelu"'* ]] \
  || { echo "FAIL: transformer json: $out"; fail=1; }
ev=$("$LFP" eval --policy "$tmp/t.lfp" --episodes 1 --json 2>&1) && [[ "$(echo "$ev" | tail -n 1)" == *'"net": "transformer"'* ]] \
  || { echo "FAIL: eval of a transformer: $ev"; fail=1; }
"$LFP" train --data "$tmp/d.hdf5" --out "$tmp/f.lfp" --method lfm --net transformer --width 16 --depth 1 --tfm-cond adaln \
  --steps 40 > "$tmp/f.txt" 2>&1 && grep -q "adaln gelu" "$tmp/f.txt" || { echo "FAIL: lfm transformer, adaln: $(cat "$tmp/f.txt")"; fail=1; }
# cross-attention conditioning (Diffusion Policy's): one memory token per
# observation frame (lift's To 2) and the time token; the file keeps it
out=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/x.lfp" --method fm --net transformer --width 16 --depth 1 --heads 2 \
  --tfm-cond cross --steps 40 --json 2>&1) || { echo "FAIL: train --tfm-cond cross: $out"; fail=1; }
[[ "$(echo "$out" | tail -n 1)" == *'"net_desc": "transformer width 16 depth 1 heads 2 ffn 64 cross gelu"'* ]] \
  || { echo "FAIL: cross transformer json: $out"; fail=1; }
ev=$("$LFP" eval --policy "$tmp/x.lfp" --episodes 1 2>&1) && [[ "$ev" == *"transformer width 16 depth 1 heads 2 ffn 64 cross gelu"* ]] \
  || { echo "FAIL: eval of a cross transformer: $ev"; fail=1; }
# a transformer over a latent of 4 tokens of 4 values
out=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/lt.lfp" --method fm --net transformer --width 16 --depth 1 \
  --latent 16 --latent-tokens 4 --ae-width 32 --ae-steps 50 --steps 30 --json 2>&1) || { echo "FAIL: transformer in a latent: $out"; fail=1; }
ev=$("$LFP" eval --policy "$tmp/lt.lfp" --episodes 1 2>&1) && [[ "$ev" == *"transformer width 16"*"flowing in a latent of 16 values"* ]] \
  || { echo "FAIL: eval of a transformer in a latent: $ev"; fail=1; }
# pusht's recipe for a latent flow on its U-Net: 32000 steps, 4 tokens (the
# chunk network's horizon), unless flags set them; another network keeps the
# action-space recipe's 8000 steps; a transformer gets 16000 (tiny networks:
# the step count is the test)
"$LFP" collect --env pusht --episodes 3 --seed 1 --out "$tmp/p.hdf5" > /dev/null || { echo "FAIL: collect pusht"; exit 1; }
recipe_steps() { # ARGS...: the steps of a pusht latent run's JSON
  "$LFP" train --data "$tmp/p.hdf5" --out "$tmp/p.lfp" --method fm --latent 8 --ae-width 8 --ae-steps 20 --batch 2 "$@" \
    --json 2> /dev/null | tail -n 1 | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["steps"])'
}
[ "$(recipe_steps --unet-dims 8,8,8)" = 32000 ] || { echo "FAIL: pusht latent recipe: not 32000 steps"; fail=1; }
[ "$(recipe_steps --unet-dims 8,8,8 --steps 50)" = 50 ] || { echo "FAIL: pusht latent recipe: --steps 50 not kept"; fail=1; }
[ "$(recipe_steps --net mlp --width 8 --depth 1)" = 8000 ] || { echo "FAIL: pusht latent mlp: not the recipe's 8000"; fail=1; }
# and a transformer in action space: 16000 steps
tfm_steps() { # ARGS...: the steps of a pusht transformer run's JSON
  "$LFP" train --data "$tmp/p.hdf5" --out "$tmp/p.lfp" --method fm --net transformer --width 8 --depth 1 --heads 2 \
    --batch 2 "$@" --json 2> /dev/null | tail -n 1 | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["steps"])'
}
[ "$(tfm_steps)" = 16000 ] || { echo "FAIL: pusht transformer recipe: not 16000 steps"; fail=1; }
[ "$(tfm_steps --steps 30)" = 30 ] || { echo "FAIL: pusht transformer recipe: --steps 30 not kept"; fail=1; }
msg=$("$LFP" train --data "$tmp/p.hdf5" --out "$tmp/p.lfp" --method fm --latent 8 --latent-tokens 1 --unet-dims 8,8,8 \
  --steps 5 2>&1) && { echo "FAIL: pusht latent of 1 token on the U-Net trained"; fail=1; }
[[ "$msg" == *"not divisible by 2^(levels - 1) = 4"* ]] || { echo "FAIL: pusht latent tokens 1: $msg"; fail=1; }
# usage errors: one sentence, no file
check() { # WANT_RC WORDS ARGS...
  local want=$1 words=$2
  shift 2
  local msg rc
  rm -f "$tmp/x.lfp"
  msg=$("$LFP" train --data "$tmp/d.hdf5" --out "$tmp/x.lfp" --method fm --steps 5 "$@" 2>&1); rc=$?
  [ "$rc" = "$want" ] && [[ "$msg" == *"$words"* ]] && [ "$(echo "$msg" | grep -c .)" -le 2 ] && [ ! -e "$tmp/x.lfp" ] \
    || { echo "FAIL: train $* -> $rc: $msg"; fail=1; }
}
check 1 "--latent 200: the latent dimension must be in 1..112" --latent 200
check 2 "--heads, --ffn and --tfm-cond are the transformer's" --heads 2
check 2 "--width and --depth are the mlp's and the transformer's" --net unet --width 32
check 1 "width 128 does not split into 3 attention heads" --net transformer --heads 3
check 2 "--tfm-cond" --net transformer --tfm-cond gated
check 1 "--latent-tokens 3 does not divide the 16 latent values" --net transformer --latent 16 --latent-tokens 3
exit $fail
