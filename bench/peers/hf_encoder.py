"""Encoder peer: sentence embeddings with Hugging Face transformers on PyTorch, as a strong engineer writes it.
Same model folder, max_length, thread count and pooling as textshift's side of `npm run bench -- --peers`:
eval mode, no grad, the fast tokenizer, batches of BATCH texts sorted by token length (padded per batch), mean
pooling over real tokens. Tokenization is timed with encoding; model loading and one warm-up batch are not.
Writes OUT_DIR/<corpus>.npy (float32) and ends with the peers' final JSON line.
Usage: python hf_encoder.py TEXTS_JSON OUT_DIR MODEL_DIR [THREADS] [MAX_LENGTH] [BATCH]"""
import json, os, sys, time
import numpy as np, torch
from transformers import AutoModel, AutoTokenizer

texts_path, out, model_dir = sys.argv[1], sys.argv[2], sys.argv[3]
THREADS = int(sys.argv[4]) if len(sys.argv) > 4 else 2
MAX_LENGTH = int(sys.argv[5]) if len(sys.argv) > 5 else 256
BATCH = int(sys.argv[6]) if len(sys.argv) > 6 else 32
torch.set_num_threads(THREADS)
os.makedirs(out, exist_ok=True)
corpora = json.load(open(texts_path, encoding='utf-8'))

t0 = time.perf_counter()
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModel.from_pretrained(model_dir).eval()
timings = {'load_s': time.perf_counter() - t0}

def encode(texts):
    enc = tok(texts, truncation=True, max_length=MAX_LENGTH)
    ids, types = enc['input_ids'], enc.get('token_type_ids')
    order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
    emb = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, len(order), BATCH):
            rows = order[s:s + BATCH]
            feats = {'input_ids': [ids[i] for i in rows]}
            if types is not None: feats['token_type_ids'] = [types[i] for i in rows]
            batch = tok.pad(feats, return_tensors='pt')
            hidden = model(**batch).last_hidden_state
            mask = batch['attention_mask'].unsqueeze(-1).to(hidden.dtype)
            emb[rows] = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    return emb, sum(len(x) for x in ids)

results = {}
for name, texts in corpora.items():
    encode(texts[:BATCH])  # warm-up, as textshift's side does
    t = time.perf_counter()
    emb, tokens = encode(texts)
    results[name] = {'texts': len(texts), 'seconds': time.perf_counter() - t, 'tokens': tokens}
    np.save(os.path.join(out, f'{name}.npy'), emb)
print(json.dumps({'results': results, 'timings': timings}), flush=True)
