"""Summarize calibration runs: one row per run dir under /work/calib-runs (finished ones)."""
import json, sys, glob, os
ROOT = "/work/calib-runs"
def load(run):
    m = [json.loads(l) for l in open(f"{ROOT}/{run}/metrics.jsonl")] if os.path.exists(f"{ROOT}/{run}/metrics.jsonl") else []
    tr = [r for r in m if r["kind"] == "train"]; ev = [r for r in m if r["kind"] == "eval"]
    return tr, ev
def conv(tr, ev):
    """Criterion: (a) the last 20% of steps split in two halves: the mean train loss of the last half is
    less than 0.01 nats/answer-token below that of the first half (the relative change is reported too); (b) seen and unseen eval accuracy at the last two evals (both at >= 80% of steps) differ by
    < 2 points."""
    if not tr: return None, None, None
    n = tr[-1]["step"]
    a = [r["loss"] for r in tr if 0.8*n < r["step"] <= 0.9*n]; b = [r["loss"] for r in tr if r["step"] > 0.9*n]
    if not a or not b: return None, None, None
    la, lb = sum(a)/len(a), sum(b)/len(b)
    rel = (la - lb) / la if la else 0
    loss_ok = (la - lb) < 0.01  # absolute drop < 0.01 nats per answer token
    e = [r for r in ev if r["step"] >= 0.8*n]
    acc_ok = None; d = None
    if len(e) >= 2:
        def g(r, k):
            acc = r.get("accuracy", r)
            return acc.get(k)
        d = max(abs(g(e[-1], k) - g(e[-2], k)) for k in ("test_seen", "test_unseen"))
        acc_ok = d < 0.02
    return (round(rel,3), round(la-lb,4)), d, (loss_ok and (acc_ok is not False))
rows = []
for run in sorted(os.listdir(ROOT)):
    if not os.path.isdir(f"{ROOT}/{run}") or run.startswith("probe"): continue
    tr, ev = load(run)
    s = json.load(open(f"{ROOT}/{run}/summary.json")) if os.path.exists(f"{ROOT}/{run}/summary.json") else None
    man = json.load(open(f"{ROOT}/{run}/data_manifest.json")) if os.path.exists(f"{ROOT}/{run}/data_manifest.json") else {}
    args = open(f"{ROOT}/{run}.args").read().split("\n")
    wall = [l for l in args if l.startswith("wall_s")]
    rel, d, ok = conv(tr, ev)
    last = tr[-1] if tr else {}
    sps = last["step"]/last["seconds"] if last else 0
    tps = last["tokens"]/last["seconds"] if last else 0
    rows.append(dict(run=run, args=args[0], steps=last.get("step"), sec=last.get("seconds"), wall=wall[0].split()[1] if wall else "-",
        sps=sps, tps=tps, loss=(s or {}).get("train", {}).get("final_loss"), seen=(s or {}).get("accuracy", {}).get("test_seen"),
        unseen=(s or {}).get("accuracy", {}).get("test_unseen"), rel=rel, d=d, ok=ok, man=man, ev=ev, tr=tr, done=s is not None))
if __name__ == "__main__":
    verbose = "-v" in sys.argv
    for r in rows:
        print(f"{r['run']:40s} done={r['done']} steps={r['steps']} train_s={r['sec']} wall={r['wall']} {r['sps']:.2f}st/s {r['tps']/1e3:.1f}ktok/s loss={r['loss']} seen={r['seen']} unseen={r['unseen']} dloss_last20={r['rel']} dacc={r['d']} conv={r['ok']} pats={r['man'].get('disjointness',{}).get('train_patterns')}/{r['man'].get('disjointness',{}).get('train_rules')}")
        if verbose:
            print("   ", r["args"]);
            print("    evals:", [(e["step"], round(e.get("accuracy", e).get("test_seen", -1), 3), round(e.get("accuracy", e).get("test_unseen", -1), 3)) for e in r["ev"]])
            print("    loss:", [(t["step"], round(t["loss"], 4)) for t in r["tr"][4::5]])
            pass
