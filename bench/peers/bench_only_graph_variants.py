"""BENCH-ONLY prototype, not product code: a Hugging Face BERT folder (model.safetensors, config.json, tokenizer) as
an ONNX feature-extraction folder in one of two graph shapes, to measure what onnxruntime's fused contrib ops buy:
  writer   the ops scripts/onnx/bert-onnx.ts emits today (Gather embeddings, LayerNormalization, MatMul+Add, Q/K/V
           Reshape+Transpose, MatMul·scale + additive float-min mask, Softmax, exact-erf GELU), opset 17
  contrib  com.microsoft EmbedLayerNormalization (int32 ids, emits the 1-D mask index), Attention (packed QKV weight
           [H, 3H] and bias [3H]), SkipLayerNormalization (residual + dense bias + LayerNorm), BiasGelu
Writes OUT/onnx/model.onnx plus the tokenizer and config (link model.safetensors into OUT for the HF peer).
  python bench/peers/bench_only_graph_variants.py HF_FOLDER OUT writer|contrib
  python bench/peers/bench_only_graph_variants.py --count MODEL.onnx ...   (op types per domain, e.g. of a graph
           dumped by onnxruntime with bench/peers/optimized-graph.ts)"""
import collections, json, os, shutil, sys
import numpy as np, onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
from safetensors.numpy import load_file

if sys.argv[1] == '--count':
    for f in sys.argv[2:]:
        c = collections.Counter((n.domain or 'ai.onnx') + ':' + n.op_type for n in onnx.load(f, load_external_data=False).graph.node)
        print(f, sum(c.values()), 'nodes:', ', '.join(f'{k} {v}' for k, v in c.most_common()))
    sys.exit(0)
src, out, variant = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = json.load(open(os.path.join(src, 'config.json')))
W = load_file(os.path.join(src, 'model.safetensors'))
H, NH, L, eps = cfg['hidden_size'], cfg['num_attention_heads'], cfg['num_hidden_layers'], cfg['layer_norm_eps']
D = H // NH
nodes, inits, k = [], [], [0]
seen = set()
def init(name, arr):
    if name not in seen: seen.add(name); inits.append(nh.from_array(np.ascontiguousarray(arr), name))
    return name
def op(t, ins, domain='', **attrs):
    k[0] += 1; o = f'n{k[0]}'; nodes.append(h.make_node(t, ins, [o], name=f'{t}_{o}', domain=domain, **attrs)); return o
def w(name): return W[name]
def lin_w(p): return init(p + '.weight', w(p + '.weight').T)  # torch [out,in] -> [in,out]
def dense(p, x): return op('Add', [op('MatMul', [x, lin_w(p)]), init(p + '.bias', w(p + '.bias'))])
def ln(p, x): return op('LayerNormalization', [x, init(p + '.weight', w(p + '.weight')), init(p + '.bias', w(p + '.bias'))], axis=-1, epsilon=eps)

if variant == 'writer':
    word = op('Gather', [init('word', w('embeddings.word_embeddings.weight')), 'input_ids'])
    typ = op('Gather', [init('type', w('embeddings.token_type_embeddings.weight')), 'token_type_ids'])
    seq = op('Shape', ['input_ids'], start=1, end=2)
    zero = init('zero', np.array([0], np.int64))
    pos = op('Slice', [init('pos', w('embeddings.position_embeddings.weight')), zero, seq, zero])
    x = ln('embeddings.LayerNorm', op('Add', [op('Add', [word, typ]), pos]))
    mask = op('Cast', ['attention_mask'], to=T.FLOAT)
    bias = op('Unsqueeze', [op('Mul', [op('Sub', [init('one', np.array(1, np.float32)), mask]), init('fmin', np.array(np.finfo(np.float32).min, np.float32))]), init('axes12', np.array([1, 2], np.int64))])
    split = init('split', np.array([0, 0, NH, D], np.int64)); merge = init('merge', np.array([0, 0, H], np.int64))
    scale = init('scale', np.array(1 / np.sqrt(D), np.float32))
    for l in range(L):
        p = f'encoder.layer.{l}'
        heads = lambda n, perm: op('Transpose', [op('Reshape', [dense(f'{p}.attention.self.{n}', x), split])], perm=perm)
        q, kk, v = heads('query', [0, 2, 1, 3]), heads('key', [0, 2, 3, 1]), heads('value', [0, 2, 1, 3])
        probs = op('Softmax', [op('Add', [op('Mul', [op('MatMul', [q, kk]), scale]), bias])], axis=-1)
        ctx = op('Reshape', [op('Transpose', [op('MatMul', [probs, v])], perm=[0, 2, 1, 3]), merge])
        x = ln(f'{p}.attention.output.LayerNorm', op('Add', [dense(f'{p}.attention.output.dense', ctx), x]))
        up = dense(f'{p}.intermediate.dense', x)
        erf = op('Erf', [op('Div', [up, init('sqrt2', np.array(np.sqrt(2), np.float32))])])
        gelu = op('Mul', [op('Mul', [up, init('half', np.array(0.5, np.float32))]), op('Add', [erf, 'one'])])
        x = ln(f'{p}.output.LayerNorm', op('Add', [dense(f'{p}.output.dense', gelu), x]))
else:
    ids32 = op('Cast', ['input_ids'], to=T.INT32); seg32 = op('Cast', ['token_type_ids'], to=T.INT32); mask32 = op('Cast', ['attention_mask'], to=T.INT32)
    k[0] += 1
    x, mask_index = f'emb{k[0]}', f'mask_index{k[0]}'
    nodes.append(h.make_node('EmbedLayerNormalization', [ids32, seg32, init('word', w('embeddings.word_embeddings.weight')), init('pos', w('embeddings.position_embeddings.weight')),
        init('type', w('embeddings.token_type_embeddings.weight')), init('emb_g', w('embeddings.LayerNorm.weight')), init('emb_b', w('embeddings.LayerNorm.bias')), mask32],
        [x, mask_index], name='EmbedLayerNormalization', domain='com.microsoft', epsilon=eps))
    for l in range(L):
        p = f'encoder.layer.{l}'
        qkv_w = np.concatenate([w(f'{p}.attention.self.{n}.weight').T for n in ('query', 'key', 'value')], axis=1)
        qkv_b = np.concatenate([w(f'{p}.attention.self.{n}.bias') for n in ('query', 'key', 'value')])
        att = op('Attention', [x, init(f'{p}.qkv.weight', qkv_w), init(f'{p}.qkv.bias', qkv_b), mask_index], domain='com.microsoft', num_heads=NH)
        o = op('MatMul', [att, lin_w(f'{p}.attention.output.dense')])
        x = op('SkipLayerNormalization', [o, x, init(f'{p}.ln1.g', w(f'{p}.attention.output.LayerNorm.weight')), init(f'{p}.ln1.b', w(f'{p}.attention.output.LayerNorm.bias')),
                init(f'{p}.ao.b', w(f'{p}.attention.output.dense.bias'))], domain='com.microsoft', epsilon=eps)
        g = op('BiasGelu', [op('MatMul', [x, lin_w(f'{p}.intermediate.dense')]), init(f'{p}.i.b', w(f'{p}.intermediate.dense.bias'))], domain='com.microsoft')
        x = op('SkipLayerNormalization', [op('MatMul', [g, lin_w(f'{p}.output.dense')]), x, init(f'{p}.ln2.g', w(f'{p}.output.LayerNorm.weight')), init(f'{p}.ln2.b', w(f'{p}.output.LayerNorm.bias')),
                init(f'{p}.o.b', w(f'{p}.output.dense.bias'))], domain='com.microsoft', epsilon=eps)
nodes.append(h.make_node('Identity', [x], ['last_hidden_state']))
tok = lambda n: h.make_tensor_value_info(n, T.INT64, ['batch_size', 'sequence_length'])
g = h.make_graph(nodes, 'bert', [tok('input_ids'), tok('attention_mask'), tok('token_type_ids')], [h.make_tensor_value_info('last_hidden_state', T.FLOAT, ['batch_size', 'sequence_length', H])], inits)
opsets = [h.make_opsetid('', 17)] + ([h.make_opsetid('com.microsoft', 1)] if variant != 'writer' else [])
m = h.make_model(g, opset_imports=opsets, producer_name='textshift prototype', ir_version=8)
os.makedirs(os.path.join(out, 'onnx'), exist_ok=True)
for f in ('config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'):
    shutil.copy(os.path.join(src, f), out)
onnx.save(m, os.path.join(out, 'onnx', 'model.onnx'))
print('wrote', out, len(nodes), 'nodes')
