/** The files of a BERT-family model folder (HF/optimum layout) that the encoder reads. */
const FILES_THAT_DEFINE_OUTPUTS = /(^|\/)(onnx\/model\.onnx|config\.json|vocab\.txt|tokenizer\.json|tokenizer_config\.json)$/;

/**
 * Whether a file of a BERT-family model folder (its path inside the folder) is one the encoder reads: its vectors
 * depend on it. Kept apart from the encoder so that Prepare, which pins these files, loads no ONNX Runtime.
 */
export function definesOutputs(path: string): boolean {
  return FILES_THAT_DEFINE_OUTPUTS.test(path);
}
