#!/usr/bin/env bash
# Pictures of a run, end to end: lfp eval / replay / sim --video write MP4s
# that an independent reader (ffprobe, ffmpeg) finds whole, of the asked size
# and frame count, not blank; rendering leaves the rollout unchanged (same
# digest with and without --video); lfp report writes one page that a real
# browser (headless Chromium) renders with its charts drawn, its videos
# decoded and a screenshot that is not blank; bad inputs get one sentence.
set -u
LFP=$1
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2> /dev/null && wait "$p" 2> /dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
for tool in ffprobe ffmpeg chromium; do
  command -v $tool > /dev/null || { echo "FAIL: $tool is not installed (tools/setup.sh installs it)"; exit 1; }
done

"$LFP" collect --env pusht --episodes 12 --seed 5 --out "$tmp/d.hdf5" > /dev/null || { echo "FAIL: collect"; exit 1; }
"$LFP" train --data "$tmp/d.hdf5" --out "$tmp/p.lfp" --method fm --net mlp --width 64 --depth 2 --steps 200 \
  --eval-every 100 --eval-episodes 2 > "$tmp/train.txt" 2>&1 || { echo "FAIL: train: $(tail -3 "$tmp/train.txt")"; exit 1; }

# eval with and without videos: the same episodes
"$LFP" eval --policy "$tmp/p.lfp" --episodes 3 --json > "$tmp/plain.json" 2> /dev/null || { echo "FAIL: eval"; exit 1; }
"$LFP" eval --policy "$tmp/p.lfp" --episodes 3 --video "$tmp/v" --video-episodes 2 --size 160x128 --json \
  > "$tmp/eval.json" 2> "$tmp/eval.txt" || { echo "FAIL: eval --video: $(tail -3 "$tmp/eval.txt")"; exit 1; }
grep -q "rendered 2 videos to $tmp/v (.* frames at 160x128, 10 fps; EGL surfaceless" "$tmp/eval.txt" \
  || { echo "FAIL: eval --video reports no per-frame cost: $(grep rendered "$tmp/eval.txt")"; fail=1; }
# replay: the expert's demos (successes) into the same folder
"$LFP" replay "$tmp/d.hdf5" --demo 0 --video "$tmp/v" --size 160x128 --json > "$tmp/replay.json" 2> /dev/null \
  || { echo "FAIL: replay --video"; fail=1; }

/usr/bin/python3 - "$tmp" <<'PY' || fail=1
import json, os, subprocess, sys
import numpy as np
tmp = sys.argv[1]
plain, ev, rp = (json.load(open(os.path.join(tmp, f))) for f in ("plain.json", "eval.json", "replay.json"))
bad = []
if plain["digest"] != ev["digest"]:
    bad.append("the digest changed with --video: %s vs %s" % (plain["digest"], ev["digest"]))
if len(ev["videos"]) != 2 or len(rp["videos"]) != 1 or not rp["videos"][0]["success"]:
    bad.append("videos listed: eval %d, replay %s" % (len(ev["videos"]), rp["videos"]))
for key in ("latency_us_hist", "traces", "video_ms_per_frame_draw", "video_ms_per_frame_encode"):
    if key not in ev:
        bad.append("eval --json has no " + key)
h = ev.get("latency_us_hist", {})
if sum(h.get("counts", [])) < 1 or len(h.get("edges", [])) != len(h.get("counts", [])) + 1:
    bad.append("the latency histogram is malformed")
tr = ev.get("traces", [])
if not tr or len(tr[0]["actions"]) != tr[0]["len"] or len(tr[0]["coverage"]) != tr[0]["len"] + 1:
    bad.append("the trace is malformed")
for v in ev["videos"] + rp["videos"]:
    f = v["file"]
    want = ("_success.mp4" if v["success"] else "_fail.mp4")
    if not f.endswith(want) or not os.path.isfile(f) or os.path.exists(f + ".part"):
        bad.append("%s: not a finished %s file" % (f, want))
        continue
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                            "stream=codec_name,width,height,nb_read_frames", "-of", "json", f],
                           capture_output=True, text=True)
    st = json.loads(probe.stdout)["streams"][0]
    if (st["codec_name"], st["width"], st["height"], int(st["nb_read_frames"])) != ("h264", 160, 128, v["frames"]):
        bad.append("%s: ffprobe reads %s, lfp wrote %d frames of 160x128" % (f, st, v["frames"]))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", f, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, 128, 160, 3)
    first, last = frames[0].astype(float), frames[-1].astype(float)
    if first.std() < 20:
        bad.append("%s: its first frame is blank (pixel std %.1f)" % (f, first.std()))
    if np.abs(first - last).mean() < 1:
        bad.append("%s: nothing moves (first and last frames equal)" % f)
print("\n".join("FAIL: " + b for b in bad) or "videos: ok")
sys.exit(1 if bad else 0)
PY

# sim --video: the same episode through a node
"$LFP" serve --policy "$tmp/p.lfp" --bind "tcp://127.0.0.1:*" > "$tmp/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "protocol [0-9]" "$tmp/serve.log" 2> /dev/null && break; sleep 0.1; done
ep=$(sed -n 's/.* on \(tcp:[^,]*\), protocol [0-9].*/\1/p' "$tmp/serve.log")
if [ -z "$ep" ]; then
  echo "FAIL: lfp serve did not start: $(cat "$tmp/serve.log")"
  fail=1
else
  "$LFP" sim --connect "$ep" --episodes 1 --video "$tmp/sv" --size 160x128 --json > "$tmp/sim.json" 2> "$tmp/sim.txt" \
    || { echo "FAIL: sim --video: $(tail -2 "$tmp/sim.txt")"; fail=1; }
  "$LFP" eval --policy "$tmp/p.lfp" --episodes 1 --json > "$tmp/one.json" 2> /dev/null
  /usr/bin/python3 -c "
import json, os, sys
s, e = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ok = s['digest'] == e['digest'] and len(s['videos']) == 1 and os.path.isfile(s['videos'][0]['file']) and 'rtt_us_hist' in s
sys.exit(0 if ok else 1)" "$tmp/sim.json" "$tmp/one.json" || { echo "FAIL: sim --video: digest or video"; fail=1; }
fi

# the report, in a real browser
"$LFP" report --policy "$tmp/p.lfp" --eval "$tmp/eval.json" --eval "$tmp/sim.json" --videos "$tmp/v" \
  --out "$tmp/r.html" > "$tmp/report.txt" 2>&1 || { echo "FAIL: report: $(cat "$tmp/report.txt")"; exit 1; }
grep -q "3 videos" "$tmp/report.txt" || { echo "FAIL: report: $(cat "$tmp/report.txt")"; fail=1; }
grep -qiE '(src|href)="(https?:)?//|<link |@import|url\(https?:' "$tmp/r.html" && { echo "FAIL: the report loads something from outside itself"; fail=1; }
grep -q "$(sha256sum "$tmp/d.hdf5" | cut -c1-64)" "$tmp/r.html" || { echo "FAIL: the card lacks the data's SHA-256"; fail=1; }
chrome() {
  timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$tmp/chrome" --virtual-time-budget=30000 \
    --window-size=1000,2600 "$@" "file://$tmp/r.html" 2> "$tmp/chrome.err"
}
chrome --dump-dom > "$tmp/dom.html" || { echo "FAIL: chromium --dump-dom: $(tail -3 "$tmp/chrome.err")"; fail=1; }
(cd "$tmp" && chrome --screenshot="$tmp/shot.png" > /dev/null) || { echo "FAIL: chromium --screenshot"; fail=1; }
/usr/bin/python3 - "$tmp" <<'PY' || fail=1
import os, re, subprocess, sys
import numpy as np
tmp = sys.argv[1]
dom = open(os.path.join(tmp, "dom.html")).read()
bad = []
m = re.search(r'<body data-lfp-charts="(\d+)" data-lfp-blank="(\d+)"', dom)
# loss, score x 2, 2 latency histograms, traces and coverage of the eval and the sim
if not m or int(m.group(1)) < 7 or int(m.group(2)) != 0:
    bad.append("charts drawn / blank: %s" % (m.groups() if m else "the page's script did not finish"))
loaded = re.findall(r'data-loaded="(\d+)x(\d+)"', dom)
if dom.count("<video") != 3 or loaded != [("160", "128")] * 3:
    bad.append("videos: %d elements, decoded %s" % (dom.count("<video"), loaded))
if dom.count('class="uplot') < 7:
    bad.append("uPlot charts in the DOM: %d" % dom.count('class="uplot'))
raw = subprocess.run(["ffmpeg", "-v", "error", "-i", os.path.join(tmp, "shot.png"), "-f", "rawvideo", "-pix_fmt", "gray",
                      "-"], capture_output=True).stdout
px = np.frombuffer(raw, np.uint8)
if px.size < 1000 * 1000 or px.std() < 10 or (px < 128).mean() < 0.01:
    bad.append("the screenshot is blank (%d pixels, std %.1f)" % (px.size, px.std() if px.size else 0))
print("\n".join("FAIL: " + b for b in bad) or "report in chromium: ok")
sys.exit(1 if bad else 0)
PY

# bad input: one sentence, exit 1 or 2, nothing left half-written
expect() { # expect STATUS PATTERN CMD...
  local want=$1 pat=$2
  shift 2
  out=$("$@" 2>&1 > /dev/null)
  local got=$?
  if [ "$got" != "$want" ] || ! echo "$out" | grep -q "$pat" || [ "$(echo "$out" | wc -l)" != 1 ]; then
    echo "FAIL: $* -> $got, '$out' (want $want, /$pat/)"
    fail=1
  fi
}
echo "not json" > "$tmp/bad.json"
echo '{"env": "pusht"}' > "$tmp/partial.json"
printf 'step,block,train_loss,valid_loss,lr,train_s,score,success\n10,1,abc,,0.1,1,,\n' > "$tmp/bad.csv"
expect 1 "bad.json is not JSON" "$LFP" report --policy "$tmp/p.lfp" --eval "$tmp/bad.json" --out "$tmp/x.html"
expect 1 "partial.json is not what lfp eval --json writes: it has no episodes" \
  "$LFP" report --policy "$tmp/p.lfp" --eval "$tmp/partial.json" --out "$tmp/x.html"
expect 1 "bad.csv:2: column train_loss holds 'abc'" "$LFP" report --policy "$tmp/p.lfp" --log "$tmp/bad.csv" --out "$tmp/x.html"
expect 1 "cannot read the folder" "$LFP" report --policy "$tmp/p.lfp" --videos "$tmp/none" --out "$tmp/x.html"
expect 2 "is required" "$LFP" report --policy "$tmp/p.lfp"
expect 1 "d.hdf5 is not an lfp checkpoint" "$LFP" report --policy "$tmp/d.hdf5" --out "$tmp/x.html"
[ -e "$tmp/x.html" ] || [ -e "$tmp/x.html.part" ] && { echo "FAIL: a failed report left a file"; fail=1; }
expect 1 "size '33x20': each side must be even" "$LFP" eval --policy "$tmp/p.lfp" --episodes 1 --video "$tmp/v2" --size 33x20
expect 1 "size 'big' is not WIDTHxHEIGHT" "$LFP" eval --policy "$tmp/p.lfp" --episodes 1 --video "$tmp/v2" --size big
expect 1 "eval.json is not a folder\|cannot make the folder" "$LFP" eval --policy "$tmp/p.lfp" --episodes 1 --video "$tmp/eval.json"
exit $fail
