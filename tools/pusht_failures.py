#!/usr/bin/python3
"""Split a policy's Push-T failures by what the pusher and the block did.

  lfp eval --policy P.lfp --episodes 50 --seed 200000 --record R.hdf5
  tools/pusht_failures.py R.hdf5 [--json]

Each episode of the recorded file (states, block_pose, agent_pos) falls in
one class, from its pose error to the goal and its last 100 steps:
  success    coverage reached the goal (the demo's last reward is 1)
  near       failed, but the final pose is within 2 cm and 15 degrees of the goal
  parked     the block and the pusher both stopped (block path < 1 cm,
             pusher path < 5 cm over the last 100 steps): a stall
  wandering  the block stopped but the pusher kept moving (> 5 cm): orbiting
             or searching without pushing
  pushing    the block still moved (>= 1 cm) without reaching the goal
It also reports the fraction of steps in contact (the pusher within 3 mm of
the T) and the mean pose error at the end, per class.
"""
import json
import math
import sys

import h5py
import numpy as np

GOAL = (0.256, 0.256, math.pi / 4)
RECTS = ((0.0, 0.03, 0.06, 0.015), (0.0, -0.03, 0.015, 0.045))  # the T: centre, half sizes (block frame)
R = 0.015  # pusher radius


def dist_to_t(agent, pose):
    """distance from the pusher centre to the T's outline (0 inside), per step"""
    dx, dy = agent[:, 0] - pose[:, 0], agent[:, 1] - pose[:, 1]
    c, s = np.cos(pose[:, 2]), np.sin(pose[:, 2])
    px, py = c * dx + s * dy, -s * dx + c * dy
    best = np.full(len(px), np.inf)
    for cx, cy, hx, hy in RECTS:
        ex = np.maximum(np.abs(px - cx) - hx, 0.0)
        ey = np.maximum(np.abs(py - cy) - hy, 0.0)
        best = np.minimum(best, np.hypot(ex, ey))
    return best


def angle_err(a):
    return np.abs((a - GOAL[2] + math.pi) % (2 * math.pi) - math.pi)


def classify(demo):
    pose, agent = demo["obs/block_pose"][()], demo["obs/agent_pos"][()]
    rewards = demo["rewards"][()]
    pos_err = math.hypot(pose[-1, 0] - GOAL[0], pose[-1, 1] - GOAL[1])
    ang_err = math.degrees(angle_err(pose[-1, 2]))
    tail = slice(max(0, len(pose) - 100), len(pose))
    block_path = np.sum(np.hypot(np.diff(pose[tail, 0]), np.diff(pose[tail, 1])))
    # the T's farthest point moves 7.65 cm per radian of rotation
    block_path += 0.0765 * np.sum(angle_err(np.diff(pose[tail, 2]) + GOAL[2]))
    pusher_path = np.sum(np.hypot(np.diff(agent[tail, 0]), np.diff(agent[tail, 1])))
    contact = float(np.mean(dist_to_t(agent, pose) - R < 0.003))
    if rewards[-1] > 0.5:
        cls = "success"
    elif pos_err < 0.02 and ang_err < 15:
        cls = "near"
    elif block_path < 0.01:
        cls = "parked" if pusher_path < 0.05 else "wandering"
    else:
        cls = "pushing"
    return {"class": cls, "len": int(len(pose)), "pos_err_cm": 100 * pos_err, "angle_err_deg": ang_err,
            "contact": contact, "block_path_cm": 100 * float(block_path), "pusher_path_cm": 100 * float(pusher_path)}


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit("usage: tools/pusht_failures.py RECORDED.hdf5 [--json]")
    try:
        f = h5py.File(args[0], "r")
    except OSError as e:
        sys.exit("pusht_failures: cannot open %s: %s" % (args[0], e))
    with f:
        if "data" not in f or not len(f["data"]):
            sys.exit("pusht_failures: %s has no demos" % args[0])
        names = sorted(f["data"].keys(), key=lambda n: int(n.split("_")[-1]))
        for n in names:
            if "obs/block_pose" not in f["data"][n] or "obs/agent_pos" not in f["data"][n]:
                sys.exit("pusht_failures: %s/%s has no block_pose / agent_pos: not a pusht recording" % (args[0], n))
        eps = [dict(classify(f["data"][n]), demo=n) for n in names]
    classes = ["success", "near", "pushing", "wandering", "parked"]
    summary = {}
    for c in classes:
        sel = [e for e in eps if e["class"] == c]
        summary[c] = {"episodes": len(sel)}
        if sel:
            for k in ("len", "pos_err_cm", "angle_err_deg", "contact"):
                summary[c][k] = float(np.mean([e[k] for e in sel]))
    if "--json" in sys.argv:
        print(json.dumps({"episodes": len(eps), "classes": summary, "per_episode": eps}))
        return
    print("%s: %d episodes" % (args[0], len(eps)))
    print("  %-10s %8s %8s %12s %12s %10s" % ("class", "episodes", "length", "pos err cm", "angle err", "contact"))
    for c in classes:
        s = summary[c]
        if s["episodes"]:
            print("  %-10s %8d %8.0f %12.1f %11.0f° %9.0f%%" % (c, s["episodes"], s["len"], s["pos_err_cm"],
                                                                 s["angle_err_deg"], 100 * s["contact"]))
        else:
            print("  %-10s %8d" % (c, 0))


if __name__ == "__main__":
    main()
