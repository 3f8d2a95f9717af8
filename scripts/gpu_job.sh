#!/usr/bin/env bash
# The one GPU job, run on 2026-11-28 on one NVIDIA H200 (through the device tool; see docs/MODELS.md and
# docs/BENCHMARKS.md):
#  1. `muse bench train` on CUDA, alone on the machine;
#  2. in parallel: a longer DCGAN run in bf16, and a text-VAE recipe sweep (scripts/text_sweep.py);
#  3. evaluate, pick per language the best variant meeting the fit target, pack results into $OUT.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee $OUT/gpu.txt
M="python3 -m bench.cli"
timeout 150 $M bench train --json --device cuda --steps 200 > $OUT/bench-train-cuda.json 2> $OUT/bench.err; echo "bench rc=$?"
cat $OUT/bench-train-cuda.json
W=/tmp/sweep; mkdir -p $W/dcgan/models
cp -r genmodels/weights/features $W/dcgan/models/
( timeout 300 $M train dcgan --device cuda --steps ${DCGAN_STEPS:-10000} --fresh --quiet --runs $W/dcgan/runs --models $W/dcgan/models > $W/dcgan.log 2>&1 ;
  echo "dcgan rc=$?" >> $W/dcgan.log
  timeout 60 $M eval dcgan --json --models $W/dcgan/models > $W/dcgan-eval.json 2>> $W/dcgan.log ) &
B='"bow_dim": 256'
run() { timeout 300 python3 scripts/text_sweep.py "$1" "$2" "$3" $W > $W/$2.log 2>&1 & }
run en e0 '{}'
run en e1 "{\"recipe\": {\"bow_weight\": 0.3}, \"config\": {$B}}"
run en e2 "{\"recipe\": {\"bow_weight\": 0.5}, \"config\": {$B}}"
run en e3 "{\"recipe\": {\"bow_weight\": 0.5, \"kl_target\": 15.0}, \"config\": {$B}}"
run en e4 '{"recipe": {"vae_steps": 6000, "cycles": 4}}'
run en e5 "{\"recipe\": {\"bow_weight\": 0.3, \"vae_steps\": 6000, \"cycles\": 4}, \"config\": {$B}}"
run en e6 "{\"recipe\": {\"bow_weight\": 0.3}, \"config\": {$B, \"enc_hidden\": 256}}"
run zh z0 '{}'
run zh z1 "{\"recipe\": {\"bow_weight\": 0.5, \"kl_target\": 14.0}, \"config\": {$B}}"
run zh z2 "{\"recipe\": {\"bow_weight\": 0.3, \"kl_target\": 16.0}, \"config\": {$B}}"
run zh z3 '{"recipe": {"kl_target": 16.0, "word_dropout": 0.5}}'
run zh z4 '{"recipe": {"kl_target": 16.0}, "config": {"latent_dim": 64}}'
run zh z5 "{\"recipe\": {\"bow_weight\": 1.0, \"kl_target\": 18.0, \"word_dropout\": 0.5}, \"config\": {$B}}"
run zh z6 '{"recipe": {"kl_target": 14.0, "vae_steps": 6000, "cycles": 4}, "config": {"dropout": 0.4}}'
wait
python3 - <<'PY'
import json, glob, os, shutil, tarfile
W = "/tmp/sweep"; out = os.environ["OUT"]
rows = []
for f in sorted(glob.glob(f"{W}/*.json")):
    if f.endswith("dcgan-eval.json"):
        continue
    r = json.load(open(f)); m = r["metrics"]
    rows.append({"name": r["name"], "lang": r["lang"], "overrides": r["overrides"], "gap": round(m["iw_nll"] - m["lm_nll"], 3),
                 **{k: m.get(k) for k in ("iw_nll", "lm_nll", "kl", "mi", "recon_f1", "copy_rate", "distinct2", "real_words", "shape_5or7", "all_targets_met")},
                 "vae_wall_s": r["vae_wall_s"], "steps": r["steps"]})
for r in rows: print(json.dumps(r))
json.dump(rows, open(f"{out}/sweep.json", "w"), indent=1)
with tarfile.open(f"{out}/models.tar", "w") as t:
    for lang in ("en", "zh"):
        ok = [r for r in rows if r["lang"] == lang and r["gap"] <= 1.0]
        for r in sorted(ok, key=lambda r: -r["recon_f1"])[:2]:
            t.add(f"{W}/{r['name']}/models", arcname=r["name"])
    if os.path.exists(f"{W}/dcgan/models/dcgan"):
        t.add(f"{W}/dcgan/models/dcgan", arcname="dcgan")
for f in ("dcgan.log", "dcgan-eval.json"):
    if os.path.exists(f"{W}/{f}"): shutil.copy(f"{W}/{f}", out)
PY
tail -3 $W/dcgan.log; cat $W/dcgan-eval.json | head -30
ls -la $OUT; for f in $W/*.log; do echo "== $f"; tail -2 $f; done
