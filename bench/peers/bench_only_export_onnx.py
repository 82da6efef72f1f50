"""BENCH-ONLY helper, not product code: exports a Hugging Face BERT folder to <folder>/onnx/model.onnx with
torch.onnx.export so textshift's encoder can be benchmarked against the HF peer on the same weights before
`textshift models import` (textshift's own ONNX writer) exists. Inputs input_ids, attention_mask, token_type_ids
(int64, dynamic batch and sequence axes) -> last_hidden_state, opset 17 (the optimum feature-extraction layout).
Usage: .cache/peers/venv/bin/python bench/peers/bench_only_export_onnx.py HF_FOLDER"""
import os, sys
import torch
from transformers import AutoModel

folder = sys.argv[1]
model = AutoModel.from_pretrained(folder).eval()

class LastHidden(torch.nn.Module):
    def __init__(self, m): super().__init__(); self.m = m
    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

ids = torch.ones((2, 8), dtype=torch.int64)
axes = {0: 'batch_size', 1: 'sequence_length'}
os.makedirs(os.path.join(folder, 'onnx'), exist_ok=True)
torch.onnx.export(LastHidden(model), (ids, torch.ones_like(ids), torch.zeros_like(ids)), os.path.join(folder, 'onnx', 'model.onnx'),
                  input_names=['input_ids', 'attention_mask', 'token_type_ids'], output_names=['last_hidden_state'],
                  dynamic_axes={'input_ids': axes, 'attention_mask': axes, 'token_type_ids': axes, 'last_hidden_state': axes},
                  opset_version=17, dynamo=False)
print(f'wrote {os.path.join(folder, "onnx", "model.onnx")}')
